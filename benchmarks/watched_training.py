"""A training watched in a browser on the server's own machine: what drawing the page costs the training.

A teacher may run the server and the projector's browser on one laptop. This starts a server, opens the Train page
in Chromium on the same machine, picks a dataset and a new seed (a model nobody has trained), and times the training
three ways: nobody watching (away: the tab leaves for about:blank once the training has started; the server's queue
trains on), watched with animations off (still), and watched as a browser shows the page, animations on (animated).
Headless Chromium has no GPU here, so it draws every frame on the CPU, animations included; a laptop's GPU takes that
part. Prints the machine, then per way: the training's seconds (from the server's log), the wall seconds, and the
CPU seconds Chromium and the server spent meanwhile. Needs /usr/bin/chromium; Fashion-MNIST needs ../shared/data
(else it says so).

    python benchmarks/watched_training.py [--dataset fashion-mnist] [--seed 3] [--ways away,still,animated]
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from _bench import DATA_DIR, dataset_or_skip, print_machine
from streamlit_server import VIEWPORT, chromium, streamlit_app, wait_until_idle
from suite_cpu import cpu_by_process

# away: nobody watches; still: watched, animations off (as the tests' Chromium); animated: watched as a browser shows it
WAYS = {"away": {"watch": False, "still": True}, "still": {"watch": True, "still": True},
        "animated": {"watch": True, "still": False}}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of every live Chromium process and of the Streamlit server, summed."""
    total = {"chromium": 0.0, "server": 0.0}
    for name, seconds in cpu_by_process().values():
        if name.startswith("chromium"):
            total["chromium"] += seconds
        elif name == "python streamlit server":
            total["server"] += seconds
    return total


def trained_seconds(log: Path) -> float | None:
    """The last training's seconds, as the server's queue logged them (LAYERLENS_LOG=info)."""
    found = re.findall(r"training \w+ done after ([\d.]+) s", log.read_text())
    return float(found[-1]) if found else None


def one_way(dataset: str, seed: int, watch: bool, still: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="layerlens-watched-"))
    log = folder / "streamlit.log"
    env = {"LAYERLENS_DATA": str(DATA_DIR), "LAYERLENS_CACHE": str(folder / "cache"), "LAYERLENS_LOG": "info"}
    with streamlit_app(env, log_path=log) as url, chromium(still=still) as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/train")
        page.get_by_text("Which classes get confused?").wait_for(timeout=120_000)
        wait_until_idle(page)
        page.locator("[data-testid='stSidebar'] .st-key-train_dataset").click()
        page.get_by_role("option", name=dataset, exact=True).click()
        wait_until_idle(page, 300_000)  # the dataset's shipped model, or its first training
        field = page.get_by_label("Random seed")
        field.fill(str(seed))
        field.press("Enter")
        page.get_by_text("Training: epoch 1").first.wait_for(timeout=60_000)
        before, start = cpu_seconds(), time.perf_counter()
        if watch:
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stProgress\"]')", timeout=600_000)
        else:
            page.goto("about:blank")
            deadline = time.monotonic() + 600
            while not re.search(r" (done after|failed|cancelled)", log.read_text().split(" started on ")[-1]):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the training did not end within 10 minutes; see {log}")
                time.sleep(0.5)
        after, wall = cpu_seconds(), time.perf_counter() - start
    return {"training_seconds": trained_seconds(log), "wall_seconds": round(wall, 1),
            "chromium_cpu_seconds": round(after["chromium"] - before["chromium"], 1),
            "server_cpu_seconds": round(after["server"] - before["server"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="as the Train page's Dataset box names it")
    parser.add_argument("--seed", type=int, default=3, help="a seed no shipped model was trained with")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of {', '.join(WAYS)}")
    args = parser.parse_args()
    print_machine()
    if dataset_or_skip(args.dataset, DATA_DIR) is None:
        return
    for way in args.ways.split(","):
        options = WAYS[way.strip()]
        print(json.dumps({"dataset": args.dataset, "seed": args.seed, "way": way, **one_way(args.dataset, args.seed,
                                                                                            **options)}), flush=True)


if __name__ == "__main__":
    main()
