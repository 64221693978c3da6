"""The README's request lines, run as written with the real curl against the real server (`lcrec serve`) on
127.0.0.1: only the address is changed to the test's free port. The server reads user histories from a real
Feast store, so the user-id request works as a user would send it."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from server_proc import running_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# MovieLens-100K item ids, so the README's ids ("50", "172", "181", "1") are in the served catalogue
ITEM_IDS = ["1", "50", "172", "181", "7", "100", "121", "174", "258", "286", "288", "294", "300", "313", "127",
            "98", "56", "117", "237", "405", "9", "12", "22", "64", "69", "79", "96", "173", "204", "210"]


def readme_curl_lines() -> list[str]:
    """Every line of a ```bash block in README.md that calls curl."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [ln.split("  #")[0].strip() for b in blocks for ln in b.splitlines() if ln.strip().startswith("curl ")]


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory):
    from lcrec.config import FeaturesConfig
    from lcrec.data.schema import write_tables
    from lcrec.features.store import build_feature_store
    from lcrec.testing.tiny_serving import build_tiny_serving_folder

    root = tmp_path_factory.mktemp("readme_server")
    info = build_tiny_serving_folder(root, item_ids=ITEM_IDS, rank=True)  # with a retriever: the rank request
    history = ["50", "172", "181", "7", "100"]  # user "1"'s history, oldest first
    inter = pd.DataFrame({"user_id": "1", "item_id": history, "timestamp": range(1_000, 1_005), "rating": 4.0})
    items = pd.DataFrame({"item_id": ITEM_IDS, "title": [f"Item {i}" for i in ITEM_IDS],
                          "text": [f"Item {i}." for i in ITEM_IDS]})
    write_tables(root / "data", inter, items, pd.DataFrame({"user_id": ["1"]}))
    repo = root / "feature_repo"
    repo.mkdir()
    for name in ("feature_store.yaml", "features.py"):
        shutil.copy(REPO / "feature_repo" / name, repo / name)
    build_feature_store(FeaturesConfig(history_len=20), root / "data", repo)
    params = root / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {root / 'work'}\n  feature_repo: {repo}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "lcrec.cli", "serve", "--params", str(params),
                "--set", f"serve.model_uri={info['folder']}", "--set", "serve.use_feature_store=true",
                "--set", "tracking.enabled=false", "--set", f"serve.http_port={port}"]

    with running_server(command, env, root / "server.log") as srv:
        yield {**srv, "history": history}


def test_readme_has_the_three_requests():
    lines = readme_curl_lines()
    assert len(lines) == 3 and all("localhost:8080/v1/models/lcrec:predict" in ln for ln in lines), lines
    assert all(" -H " not in ln for ln in lines)  # plain `curl -d`: a form Content-Type, as users send it


@pytest.mark.parametrize("number", [0, 1, 2])
def test_readme_request_runs_verbatim(readme_server, number):
    line = readme_curl_lines()[number].replace("localhost:8080", f"127.0.0.1:{readme_server['port']}")
    out = subprocess.run(["bash", "-c", line + " -w '\\n%{http_code}'"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    body, code = out.stdout.rsplit("\n", 1)
    assert code == "200", body
    answer = json.loads(body)
    sent = json.loads(re.search(r"-d '(.*)'", line).group(1))["instances"][0]
    items = answer["predictions"][0]["items"]
    assert len(items) == sent["k"] and all(i["item_id"] in ITEM_IDS and i["title"] for i in items)
    assert answer["model_version"] and answer["index_version"]
    shown = sent.get("history") or readme_server["history"]  # a user-id request reads the Feast history
    assert not set(shown) & {i["item_id"] for i in items}  # items already seen are not recommended again
    assert not set(sent.get("exclude", [])) & {i["item_id"] for i in items}
    assert answer["predictions"][0]["source"] == {"rank": "rank"}.get(sent.get("mode"), "decode")
