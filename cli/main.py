"""Argument parsing and dispatch; every expected failure ends as one clear line on stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from studio.errors import StudioError
from studio.families import ASPECTS
from studio.recipe import SAMPLERS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description="A Discord-native generative media studio.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    imagine = sub.add_parser("imagine", help="generate images through the queue and a worker")
    imagine.add_argument(
        "prompt", help='prompt text, with inline flags, e.g. "a lighthouse --ar 3:2 --seed 42"'
    )
    imagine.add_argument("--model", "-m", help="model id from the catalogue")
    imagine.add_argument("--negative", "-n", help="negative prompt (what to avoid)")
    imagine.add_argument("--aspect", "--ar", choices=ASPECTS, help="aspect ratio")
    imagine.add_argument("--batch", "-b", type=int, help="images in the batch (1-8)")
    imagine.add_argument("--seed", type=int, help="seed of the first image (0 to 2^32-1)")
    imagine.add_argument("--steps", type=int, help="diffusion steps (1-150)")
    imagine.add_argument("--cfg", "--guidance", dest="guidance", type=float, help="guidance scale (0-30)")
    imagine.add_argument("--sampler", choices=sorted(SAMPLERS), help="sampler")
    imagine.add_argument("--style", help="a style preset from config/styles.toml")
    imagine.add_argument("--init", help="init image for img2img (PNG, JPEG, WebP)")
    imagine.add_argument("--strength", type=float, help="img2img strength, above 0 and at most 1")
    imagine.add_argument("--project", default="default", help="project to file the generation under")
    imagine.add_argument("--out", "-o", default="out", help="folder for the images and the grid")

    history = sub.add_parser("history", help="list recent generations with status and timings")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--all-users", action="store_true", help="not only yours")

    worker = sub.add_parser("worker", help="run an arq worker for one queue")
    worker.add_argument("--queue", choices=("inference", "post", "training"), default="inference")

    models = sub.add_parser("models", help="the model catalogue")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    models_sub.add_parser("list", help="list the catalogue's models and the LoRAs trained here")
    export = models_sub.add_parser("export", help="write a LoRA's weights to a .safetensors file")
    export.add_argument("name", help="the LoRA's name")
    export.add_argument("--format", choices=("kohya", "diffusers"), default="kohya")
    export.add_argument("--out", "-o", default=".", help="folder to write it in")
    lora = models_sub.add_parser("import-lora", help="import a LoRA file (kohya, diffusers, peft) as a model")
    lora.add_argument("path", help="the LoRA's .safetensors file")
    lora.add_argument("--name", required=True, help="the model's name, used as lora:NAME")
    lora.add_argument("--model", required=True, help="the base model it goes with (its family must match)")
    lora.add_argument("--owner", help="the Discord user id it belongs to (default: the operator)")
    lora.add_argument("--trigger", help="trigger words (default: from the file's training metadata)")
    lora.add_argument("--share", metavar="SERVER_ID", help="share it with this Discord server's members")
    tiny = models_sub.add_parser("make-tiny", help="build tiny random-weight models for tests and the demo")
    tiny.add_argument("dir", help="folder to build them in")
    add = models_sub.add_parser("add", help="check a model's weights and add it to the catalogue")
    add.add_argument("source", help="a .safetensors checkpoint, a diffusers folder or a cached hub id")
    add.add_argument("--id", help="the model's id (default: from the file or folder name)")
    add.add_argument("--family", choices=("sd15", "sdxl", "flux", "sd3"), help="the family it must be")
    add.add_argument("--description", help="one line shown to users (at most 200 characters)")
    add.add_argument("--config", help="a single file's configs and parts: diffusers folder or hub id")
    add.add_argument("--models-file", help="the catalogue to add to (default: the models_file setting)")
    add.add_argument("--no-load", action="store_true", help="check the files but do not load the weights")
    check = models_sub.add_parser("check", help="check every catalogue entry: exists, family, loads")
    check.add_argument("--models-file", help="the catalogue to check (default: the models_file setting)")
    check.add_argument("--no-load", action="store_true", help="check the files but do not load the weights")

    sub.add_parser("bot", help="run the Discord bot (DISCORD_TOKEN from the environment)")

    api = sub.add_parser("api", help="run the REST API (keys come from /apikey create in Discord)")
    api.add_argument("--host", help="address to listen on (setting api_host, default 127.0.0.1)")
    api.add_argument("--port", type=int, help="port to listen on (setting api_port, default 8080)")

    from cli.apikey import add_parser as add_apikey_parser

    add_apikey_parser(sub)

    demo = sub.add_parser("demo", help="offline demo: tiny models, workers started for you, one imagine")
    demo.add_argument("prompt", nargs="?", default="a lighthouse at dusk --ar 3:2 --seed 42 --batch 4")
    demo.add_argument("--out", "-o", default="out/demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command in ("worker", "api") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return dispatch(args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "imagine":
        from cli.imagine import imagine

        return asyncio.run(imagine(args))
    if args.command == "history":
        from cli.history import history

        return asyncio.run(history(args))
    if args.command == "worker":
        from cli.worker import run_worker

        return run_worker(args.queue)
    if args.command == "models":
        from cli.models import models

        return models(args)
    if args.command == "bot":
        from bot.app import main as bot_main

        return bot_main()
    if args.command == "api":
        from api.app import run
        from studio.settings import load_settings

        return run(load_settings(), args.host, args.port)
    if args.command == "apikey":
        from cli.apikey import apikey

        return apikey(args)
    if args.command == "demo":
        from cli.demo import demo

        return demo(args)
    raise AssertionError(args.command)
