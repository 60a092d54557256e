-- An image's favourites counted by image: the feed (/browse, the web gallery) counts them for every
-- candidate image, and the primary key (user_id, image_id) only serves lookups by person, so each
-- count scanned the whole table (500 images and 1,100 favourites: 40 ms a page; now about 1 ms).
CREATE INDEX favourites_by_image ON favourites(image_id);
