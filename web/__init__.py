"""The web studio: a gallery, a library and a mask editor beside Discord, served by `atelier api`.

An adapter like the bot and the API: pages decode a request, call one studio use case and render
the outcome with Jinja2 templates; a little plain JavaScript (no build step) does the rest.
"""
