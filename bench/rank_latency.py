"""How long a person waits after enter before the next prompt's cards are on screen.

The ranking screen runs headless under Pilot at 120x36 with four candidates a prompt:
- ahead: the sampler is ahead (the next groups are already in `candidates.jsonl`): enter to
  painted cards is the commit (append + fsync, in a thread) plus mounting the cards;
- not ahead: the next group does not exist at the commit; a writer thread appends it
  `--delay` seconds later, as a sampler would; the figure is from that write to painted cards
  (the screen polls the file every 0.1 s), i.e. what the screen adds to the sampler's time;
- real (with --real): a real sampler on the tiny random model with `ahead=1`, so each next
  group is generated after the commit; enter to painted cards, generation included.

    python bench/rank_latency.py [--prompts 30] [--delay 0.5] [--real]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from textual.app import App  # noqa: E402

from screens.rank.screen import RankScreen  # noqa: E402
from screens.widgets.candidate_card import CandidateCard  # noqa: E402
from workbench import locations  # noqa: E402
from workbench import project as projects  # noqa: E402
from workbench.ranking import candidates
from workbench.registry.specs import make_spec
from workbench.run.spec import DataSource, JobSpec  # noqa: E402

ANSWER = ("A paragraph of an answer, long enough to wrap over a few lines of its card, the way a "
          "sampled answer of a small model usually does. ") * 3


class RankApp(App):
    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id

    def on_mount(self) -> None:
        self.push_screen(RankScreen(self.project, self.run_id))


def fake_session(project: str, run_id: str, prompts: int) -> Path:
    run_dir = locations.run_dir(project, run_id)
    (run_dir / "checkpoints").mkdir(parents=True)
    JobSpec(id=run_id, project=project, method="sample", base_model="tiny", params={},
            train=[DataSource(dataset="p", file="p.jsonl", kind="prompt")]).save(run_dir)
    (run_dir / "pid").write_text(f"{os.getpid()}\n")
    (run_dir / "heartbeat").write_text(f"{time.time()}\n")
    candidates.write_prompts(run_dir, [f"prompt {i}" for i in range(prompts)], models=["base"], n=4, ab=False)
    return run_dir


def write(run_dir: Path, index: int) -> None:
    candidates.write_group(run_dir, index, 0, f"Prompt {index}: write something.",
                           [{"text": f"{k}. {ANSWER}", "source": "base"} for k in range(4)])


async def wait(pilot, condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the ranking screen did not show the next prompt")
        await pilot.pause(0.005)


def on_screen(screen: RankScreen, index: int, after: float) -> bool:
    return (screen.group is not None and screen.group["index"] == index and screen.shown_at > after
            and len(screen.query(CandidateCard)) == len(screen.group["candidates"]))


async def measure(project: str, run_id: str, prompts: int, run_dir: Path | None, delay: float) -> list[float]:
    """Seconds per commit; with `run_dir`, the next group is written `delay` s after the commit
    and the time is counted from that write."""
    waits = []
    async with RankApp(project, run_id).run_test(size=(120, 36)) as pilot:
        screen = pilot.app.screen
        await wait(pilot, lambda: on_screen(screen, 0, 0.0))
        for index in range(1, prompts):
            await pilot.press("1", "2", "3")
            written: list[float] = []
            if run_dir is not None:
                def later(i=index):
                    time.sleep(delay)
                    write(run_dir, i)
                    written.append(time.monotonic())
                threading.Thread(target=later, daemon=True).start()
            pressed = time.monotonic()
            await pilot.press("enter")
            await wait(pilot, lambda: on_screen(screen, index, pressed))
            waits.append(screen.shown_at - (written[0] if run_dir is not None else pressed))
    return waits


def real_session(project: str, prompts: int) -> str:
    from workbench.jobs import launch
    from workbench.testing import make_tiny_model, tiny_home

    tiny = make_tiny_model(tiny_home())
    info = projects.load(project)
    info.base_model = str(tiny)
    info.save()
    dataset = candidates.save_typed_prompts(project, [f"Say something about the number {i}." for i in range(prompts)])
    spec = make_spec(project, "sample", {"ahead": "1", "prompts": "0", "max_new_tokens": "32"},
                            datasets=[dataset])
    launch.start(spec)
    return spec.id


def report(label: str, waits: list[float]) -> None:
    ms = sorted(w * 1000 for w in waits)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"{label:<44} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   max {ms[-1]:7.1f} ms"
          f"   ({len(ms)} commits)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the stand-in sampler takes")
    parser.add_argument("--real", action="store_true", help="also time a real sampler on the tiny model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["WORKBENCH_HOME"] = home
        projects.create("bench")
        ahead = fake_session("bench", "ahead", args.prompts)
        for i in range(args.prompts):
            write(ahead, i)
        report("sampler ahead: enter to next cards", asyncio.run(measure("bench", "ahead", args.prompts, None, 0)))
        behind = fake_session("bench", "behind", args.prompts)
        write(behind, 0)
        report("sampler behind: group written to cards", asyncio.run(
            measure("bench", "behind", args.prompts, behind, args.delay)))
        if args.real:
            from workbench.jobs import store

            run_id = real_session("bench", min(args.prompts, 12))
            report("real tiny sampler, ahead=1: enter to cards", asyncio.run(
                measure("bench", run_id, min(args.prompts, 12), None, 0)))
            store.stop("bench", run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
