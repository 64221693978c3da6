"""Write a bundled MovieLens set as an Amazon Review Data (2018) category: a review file and a metadata file.

    python benchmarks/movielens_as_amazon.py /tmp/amazon-ml100k            # ml-100k -> Movies.json.gz + meta_Movies.json.gz
    python benchmarks/movielens_as_amazon.py /tmp/amazon-ml1m --source ml-1m

    lcrec ingest --set data.source=amazon2018 --set data.path=/tmp/amazon-ml100k --set data.name=Movies

MovieLens has no review texts, and no Amazon category ships inside a package, so this is how the Amazon path
(reviews in the user's text, ``user_index.reviews``) is measured on real behaviour: every rating becomes a review
record (``reviewerID`` = the user, ``asin`` = the film, ``overall`` = the stars, ``unixReviewTime`` = the rating's
time, in MovieLens's own order) and every film a metadata record (title, a description naming its genres and
year, its genres as the category list). The review text is *generated*, not written by the user: a sentence whose
sentiment follows the stars, naming one of the film's genres and its title, in one of several wordings drawn with
a seed per (user, film). It carries exactly what the rating and the catalogue carry (which genres the user liked
or disliked), which is the part of a real review the user index can use; it has none of a real review's free
text. The interactions, the split and the item catalogue are those of the MovieLens set; the user profile
(gender, age, occupation) is left out, as Amazon has none.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
from pathlib import Path

SUMMARY = {5: ["Loved it", "A favourite", "Superb"], 4: ["Really good", "Worth it", "Enjoyed it"],
           3: ["It was fine", "Decent", "Mixed feelings"], 2: ["Not for me", "Disappointing", "Meh"],
           1: ["Terrible", "Avoid", "Waste of time"]}
OPINION = {5: ["one of the best {genre} films I have seen", "a {genre} film I would watch again tomorrow",
               "exactly the kind of {genre} I look for"],
           4: ["a solid {genre} film", "a {genre} film I enjoyed more than I expected", "good {genre}, well made"],
           3: ["an average {genre} film", "{genre} that neither bored nor excited me", "watchable {genre}, nothing more"],
           2: ["a weak {genre} film", "{genre} that did not work for me", "a {genre} film I would not recommend"],
           1: ["the worst {genre} film I can remember", "{genre} at its dullest", "a {genre} film I could not finish"]}
TAIL = ["", " The cast is good.", " The ending stayed with me.", " A bit long.", " Great soundtrack."]


def review(user: str, item: str, title: str, genres: list[str], stars: int) -> tuple[str, str]:
    """(summary, text) of one generated review, the same for the same (user, film, stars)."""
    rng = random.Random(int(hashlib.sha256(f"{user}|{item}".encode()).hexdigest()[:12], 16))
    stars = min(5, max(1, int(round(stars))))
    genre = rng.choice(genres).lower() if genres else "drama"
    text = f"{title}: {rng.choice(OPINION[stars]).format(genre=genre)}.{rng.choice(TAIL)}"
    return rng.choice(SUMMARY[stars]), text[0].upper() + text[1:]


def write(out: Path, source: str, name: str) -> dict[str, int]:
    from lcrec.data.movielens import read_bundled

    interactions, items, _ = read_bundled(source)
    out.mkdir(parents=True, exist_ok=True)
    genres = {str(r.item_id): [g for g in str(r.categories).split(", ") if g] for r in items.itertuples()}
    titles = {str(r.item_id): str(r.title) for r in items.itertuples()}
    with gzip.open(out / f"meta_{name}.json.gz", "wt", encoding="utf-8") as fh:
        for r in items.itertuples():
            fh.write(json.dumps({"asin": str(r.item_id), "title": str(r.title), "description": [str(r.description)],
                                 "category": ["Movies", *genres[str(r.item_id)]]}) + "\n")
    with gzip.open(out / f"{name}.json.gz", "wt", encoding="utf-8") as fh:
        for r in interactions.itertuples():
            user, item = str(r.user_id), str(r.item_id)
            summary, text = review(user, item, titles[item], genres[item], int(r.rating))
            fh.write(json.dumps({"reviewerID": user, "asin": item, "overall": float(r.rating),
                                 "unixReviewTime": int(r.timestamp), "summary": summary, "reviewText": text}) + "\n")
    return {"reviews": len(interactions), "items": len(items), "users": int(interactions["user_id"].nunique())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder to write <name>.json.gz and meta_<name>.json.gz into")
    ap.add_argument("--source", default="ml-100k", choices=["ml-100k", "ml-1m"])
    ap.add_argument("--name", default="Movies", help="the category name (data.name)")
    args = ap.parse_args()
    print(json.dumps({"folder": str(args.out), "name": args.name, **write(args.out, args.source, args.name)}))


if __name__ == "__main__":
    main()
