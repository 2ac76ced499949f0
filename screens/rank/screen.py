"""Rank sampled answers with the keyboard: numbers put cards in order, enter commits.

The sampler is a worker process that appends groups of candidates to its run folder;
a thread here tails that file and the run's state, so the screen never waits on it.
Each decision is committed with `ranking.commit` (appended and fsynced) from a thread
before the next prompt is shown: closing or killing the app loses at most the ranking
being made, and reopening the session goes on at the first prompt not yet decided.
A reward model, when the project has a completed one, scores each group in its own
child process; its scores show on the cards and its agreement with the person below.
`+` and `-` mark one answer good or bad (the focused card, else the card whose number comes
next), saved at once as a mark for KTO (`ranking.labels`); backspace takes a mark back too.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import get_current_worker

from screens.messages import forward_failure
from screens.rank.feed import SamplerState, SessionFeed, read_state, score_groups, session_order, session_records
from screens.rank.marking import Marking
from screens.rank.state import Ranking, Tally
from screens.rank.text import key_hint, progress_line, prompt_subtitle, prompt_text, summary
from screens.widgets.candidate_card import CandidateCard
from screens.widgets.footer import KeyFooter
from workbench import locations
from workbench.ranking import candidates
from workbench.ranking import labels as marks
from workbench.ranking import order as ordering
from workbench.ranking import rankings as ranking
from workbench.terminal import printable

POLL_SECONDS = 0.1  # candidates file: a new group shows within this
STATE_SECONDS = 1.0  # the sampler's run state (reads its events)
MAX_CARDS = 8
MARK_KEYS = Binding.Group("Good/bad")  # + and - share one place in the footer


def grid_columns(n: int) -> int:
    """Columns for `n` cards: side by side up to 3, then two rows."""
    return n if n <= 3 else (n + 1) // 2


class RankScreen(Marking, Screen):
    """One prompt at a time; the cards of its candidates; the person's order of them."""

    CSS_PATH = "screen.tcss"
    AUTO_FOCUS = ""  # number keys act on the screen; tab moves into a card to scroll it
    BINDINGS = [
        Binding("1", "pick(1)", "Pick", key_display="1-8", id="rank.pick"),
        *(Binding(str(n), f"pick({n})", f"Pick card {n}", show=False, id=f"rank.pick{n}")
          for n in range(2, MAX_CARDS + 1)),
        Binding("backspace", "undo", "Undo", key_display="⌫", id="rank.undo"),
        Binding("t", "tie", "Tie rest", id="rank.tie"),
        Binding("enter", "commit", "Commit", key_display="⏎", id="rank.commit"),
        Binding("s", "skip", "Skip", id="rank.skip"),
        Binding("plus", "label(True)", "Mark good", key_display="+", group=MARK_KEYS, id="rank.good"),
        Binding("minus", "label(False)", "Mark bad", key_display="-", group=MARK_KEYS, id="rank.bad"),
        Binding("r", "resample", "Resample", id="rank.resample"),
        Binding("j", "judge", "Judge", id="rank.judge"),
        Binding("d", "dataset", "Make dataset", id="rank.dataset"),
        Binding("escape", "back", "Back", key_display="esc", id="rank.back"),
    ]

    class GroupsRead(Message):
        """New groups, or new rounds of known ones, in the order the sampler wrote them."""

        def __init__(self, groups: list[dict]) -> None:
            super().__init__()
            self.groups = groups

    class StateRead(Message):
        def __init__(self, state: SamplerState) -> None:
            super().__init__()
            self.state = state

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, RankScreen.StateRead)

    class HistoryRead(Message):
        """This session's committed rankings and standing marks, read once when the screen opens."""

        def __init__(self, records: list[dict], marked: dict[tuple[int, int, int], bool]) -> None:
            super().__init__()
            self.records, self.marked = records, marked

    class Scored(Message):
        def __init__(self, index: int, round_: int, scores: list[float], second: list[float] | None = None) -> None:
            super().__init__()
            self.index, self.round, self.scores, self.second = index, round_, scores, second

    class ScorerNote(Message):
        """The reward model's child: which run, and whether it is ready or failed."""

        def __init__(self, run_id: str, ready: bool, error: str = "") -> None:
            super().__init__()
            self.run_id, self.ready, self.error = run_id, ready, error

    def __init__(self, project: str, run_id: str) -> None:
        super().__init__()
        self.project, self.run_id = project, run_id
        self.run_dir = locations.run_dir(project, run_id)
        self.groups: dict[int, dict] = {}
        self.order: list[int] = []
        self.done: set[int] = set()
        self.records: list[dict] = []
        self.marked: dict[tuple[int, int, int], bool] = {}  # (index, round, card) -> good, as saved
        self.marking: bool | None = None  # + or - pressed with no card focused: the next number says which
        self.history_read = False
        self.group: dict | None = None
        self.ranking: Ranking | None = None
        self.committing = False
        self.resampling = False
        self.sampler: SamplerState | None = None
        self.tally = Tally()
        self.scores: dict[tuple[int, int], list[float]] = {}
        self.second: dict[tuple[int, int], list[float]] = {}  # the other reward run's (a disagree session)
        self.unscored: dict[tuple[int, int], dict] = {}  # committed before their scores came
        self.reward_run = ""
        self.scorer_status = ""
        self.scorer_ready = False
        self.shown_at = 0.0  # monotonic time the current cards were painted (read by bench/rank_latency.py)
        # which prompt comes next (workbench.ranking.order), and the reward runs a disagree session compares
        self.session_order, self.reward_runs = session_order(self.run_dir)
        self.pick: ordering.Pick | None = None  # why the prompt shown was picked
        self._poll_now = threading.Event()
        self._to_score: queue.Queue = queue.Queue()
        self._leaving = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="progress")
        with VerticalScroll(id="prompt-box"):
            yield Static(id="prompt", markup=False)
        yield Container(id="cards")
        yield Static(id="waiting", markup=False)
        yield Static(id="hint")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.title = "Rank outputs"
        self.sub_title = f"{self.project} · session {self.run_id}"
        self.query_one("#prompt-box").border_title = "prompt"
        self.query_one("#prompt-box").display = False
        self.show_waiting()
        self.read_history()
        self.watch_session()
        self.start_scorer()

    def on_unmount(self) -> None:
        self._leaving.set()
        self._poll_now.set()
        self._to_score.put(None)

    # reading (threads) -----------------------------------------------------------

    @work(thread=True, exit_on_error=False, name="Reading the rankings")
    def read_history(self) -> None:
        standing = marks.current(self.project, self.run_id)
        self.post_message(self.HistoryRead(session_records(self.project, self.run_id),
                                           {k[1:]: mark["label"] for k, mark in standing.items()}))

    @work(thread=True, exclusive=True, group="rank.watch", exit_on_error=False, name="Reading the session")
    def watch_session(self) -> None:
        worker = get_current_worker()
        feed = SessionFeed(self.run_dir)
        next_state = 0.0
        while not worker.is_cancelled and not self._leaving.is_set():
            fresh = feed.read_new()
            if fresh:
                self.post_message(self.GroupsRead(fresh))
            if time.monotonic() >= next_state or fresh:
                self.post_message(self.StateRead(read_state(self.project, self.run_id, feed)))
                next_state = time.monotonic() + STATE_SECONDS
            self._poll_now.wait(POLL_SECONDS)
            self._poll_now.clear()

    @work(thread=True, exit_on_error=False, name="Scoring with the reward model")
    def start_scorer(self) -> None:
        """One child holds the reward model; groups are scored in the order they arrive."""
        score_groups(self.project, self._to_score, self._leaving,
                     note=lambda run_id, ready, error: self.post_message(self.ScorerNote(run_id, ready, error)),
                     scored=lambda index, round_, scores, second: self.post_message(
                         self.Scored(index, round_, scores, second)),
                     order=self.session_order, reward_runs=self.reward_runs)

    # what arrives ----------------------------------------------------------------

    async def on_rank_screen_history_read(self, message: HistoryRead) -> None:
        self.records, self.marked = message.records, message.marked
        for record in message.records:
            if record.get("index") is not None:
                self.done.add(record["index"])
            if record.get("skipped"):
                self.tally.skipped += 1
            else:
                self.tally.ranked += 1
        self.history_read = True
        await self.show_next()

    async def on_rank_screen_groups_read(self, message: GroupsRead) -> None:
        for group in message.groups:
            index = group["index"]
            if index not in self.groups:
                self.order.append(index)
            self.groups[index] = group
            if self.scorer_ready:
                self._to_score.put(group)
            current = self.group
            if current is not None and current["index"] == index and group is not current and \
                    (self.resampling or not (self.ranking and (self.ranking.picks or self.ranking.tied))):
                await self.show_group(group)
        if self.group is None:
            await self.show_next()

    def on_rank_screen_state_read(self, message: StateRead) -> None:
        self.sampler = message.state
        self.refresh_bindings()
        if self.group is None:
            self.show_waiting()
        self.show_progress()

    def on_rank_screen_scorer_note(self, message: ScorerNote) -> None:
        self.reward_run = message.run_id
        if message.error:
            self.scorer_ready = False
            self.scorer_status = f"reward model {message.run_id} unavailable"
            self.notify(printable(f"No reward scores: {message.error}"), title="Reward model", severity="warning", timeout=10,
                        markup=False)
        elif message.ready:
            self.scorer_status, self.scorer_ready = "", True
            for index in self.order:  # groups read while it loaded; the ones still to rank first
                if index not in self.done:
                    self._to_score.put(self.groups[index])
        else:
            self.scorer_status = f"reward model {message.run_id} loading…"
        self.show_progress()

    def on_rank_screen_scored(self, message: Scored) -> None:
        key = (message.index, message.round)
        self.scores[key] = message.scores
        if message.second is not None:
            self.second[key] = message.second
        record = self.unscored.pop(key, None)
        if record is not None:
            self._add_agreement(record, message.scores)
        self.show_cards_state()
        self.show_progress()
        untouched = self.ranking is not None and not (self.ranking.picks or self.ranking.tied)
        if self.session_order != "session" and untouched and self.pick is not None and not self.pick.settled and (
                self.pick.value is None or time.monotonic() - self.shown_at < ordering.SETTLE_SECONDS) \
                and not self.committing and not self.resampling:
            self.call_later(self.show_next, True)  # shown before any score: pick again with them

    # showing ---------------------------------------------------------------------

    async def show_next(self, repick: bool = False) -> None:
        """The next prompt not ranked or skipped yet by the session's order (`workbench.ranking.order`: the
        sampler's, where the reward model is least sure or where two reward runs disagree), or the waiting line."""
        if not self.history_read or self.committing:
            return
        waiting = [i for i in self.order if i not in self.done]
        pick = ordering.choose_latest(waiting, self.session_order, self.groups, self.scores, self.second)
        if pick is None:
            self.pick = None
            await self.clear_group()
            self.show_waiting()
        else:
            same = self.group is not None and pick.index == self.group["index"]
            self.pick = pick
            if not (repick and same):  # a pick again with new scores keeps the cards when the prompt stays
                await self.show_group(self.groups[pick.index])
            self.show_pick()

    async def show_group(self, group: dict) -> None:
        self.group, self.resampling, self.marking = group, False, None
        index, round_ = group["index"], group.get("round", 0)
        self.ranking = Ranking(len(group["candidates"]), labels={
            card: good for (i, r, card), good in self.marked.items() if (i, r) == (index, round_)})
        blind = bool(group.get("ab"))
        self.query_one("#prompt", Static).update(prompt_text(group["prompt"]))
        self.query_one("#prompt-box").display = True
        cards = self.query_one("#cards", Container)
        shown = list(cards.query(CandidateCard))
        n = len(group["candidates"][:MAX_CARDS])
        sources = {c.get("source", "") for c in group["candidates"]}
        named = not blind and len(sources) > 1
        self.query_one("#prompt-box").border_subtitle = prompt_subtitle(sources, blind)
        texts = [(c.get("text", ""), c.get("source", "") if named else "", "cut" in c) for c in group["candidates"]]
        if len(shown) == n:  # the same layout: only the texts change
            for card, answer in zip(shown, texts):
                card.set_candidate(*answer)
        else:
            await cards.remove_children()
            cards.styles.grid_size_columns = grid_columns(n)
            cards.styles.grid_size_rows = (n + grid_columns(n) - 1) // grid_columns(n)
            await cards.mount_all(CandidateCard(i + 1, *answer) for i, answer in enumerate(texts[:MAX_CARDS]))
        cards.display = True
        self.query_one("#waiting").display = False
        self.call_after_refresh(self._painted)
        self.show_cards_state()
        self.show_progress()
        self.refresh_bindings()

    def show_pick(self) -> None:
        """Why the prompt shown is next, on the prompt box (an ordered session only)."""
        box = self.query_one("#prompt-box")
        box.border_title = "prompt" if self.session_order == "session" or self.pick is None else \
            f"prompt · {printable(self.pick.why)}"

    def _painted(self) -> None:
        self.shown_at = time.monotonic()

    async def clear_group(self) -> None:
        self.group, self.ranking, self.resampling = None, None, False
        await self.query_one("#cards", Container).remove_children()
        self.query_one("#cards").display = False
        self.query_one("#prompt-box").display = False
        self.refresh_bindings()

    def show_waiting(self) -> None:
        waiting = self.query_one("#waiting", Static)
        waiting.display = True
        if not self.history_read:
            waiting.update("reading this session's rankings…")
        elif self.session_complete():
            waiting.update(summary(self.tally, self.records, self.reward_run))
        elif self.sampler is None:
            waiting.update("waiting for candidates (reading the sampler)")
        else:
            waiting.update(printable(self.sampler.waiting_text()))
        self.query_one("#hint", Static).update("")

    def session_complete(self) -> bool:
        s = self.sampler
        return bool(s and s.done and self.order and all(i in self.done for i in self.order))

    def show_cards_state(self) -> None:
        if self.group is None or self.ranking is None:
            return
        scores = self.scores.get((self.group["index"], self.group.get("round", 0)))
        for i, card in enumerate(self.query(CandidateCard)):
            badge = "  ·  ".join(part for part in (self.ranking.badge(i), self.ranking.mark(i)) if part)
            card.show(badge, scores[i] if scores and i < len(scores) else None)
            card.set_class(self.resampling, "-stale")
        self.query_one("#hint", Static).update(self.hint())

    def hint(self) -> Text:
        blind = bool(self.group and self.group.get("ab"))
        return key_hint(self.ranking, blind=blind, resampling=self.resampling, committing=self.committing,
                        marking=self.marking)

    def show_progress(self) -> None:
        line = progress_line(self.tally, self.sampler, self.records, self.scorer_status, self.reward_run)
        self.query_one("#progress", Static).update(Text(line))

    # the person's keys -----------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        deciding = self.ranking is not None and not self.committing and not self.resampling
        if action == "pick":
            in_range = self.ranking is not None and int(parameters[0]) <= self.ranking.size
            return True if deciding and in_range else None
        if action in ("undo", "tie", "commit", "skip", "label"):
            return True if deciding else None
        if action == "resample":
            alive = bool(self.sampler and self.sampler.alive)
            return True if deciding and alive else None
        return True

    async def action_pick(self, number: int) -> None:
        if self.marking is not None:  # the card a + or - was waiting for
            good, self.marking = self.marking, None
            await self.mark(number - 1, good)
        elif self.ranking and self.ranking.pick(number - 1):
            self.show_cards_state()

    async def on_candidate_card_clicked(self, message: CandidateCard.Clicked) -> None:
        if self.check_action("pick", (message.card.number,)):
            await self.action_pick(message.card.number)

    async def action_undo(self) -> None:
        if self.marking is not None:  # a + or - still waiting for its card: that is what goes
            self.marking = None
            self.show_cards_state()
            return
        r = self.ranking
        last = r.history[-1] if r and r.history else None
        if last and last[0] == "label" and not await self.save_mark(last[1], last[2]):
            return  # the earlier mark could not be saved: the card keeps the one on disk
        if r and r.undo():
            self.show_cards_state()

    def action_tie(self) -> None:
        if self.ranking and not self.ranking.tie_rest():
            self.notify("Nothing left to tie: enter commits.", timeout=3)
        self.show_cards_state()

    async def action_commit(self) -> None:
        r = self.ranking
        if r is None or self.group is None:
            return
        if not r.complete:
            left = ", ".join(str(i + 1) for i in r.remaining)
            self.query_one("#hint", Static).update(Text(
                f"Not yet: rank every card before enter. Cards {left} have no place yet: press their numbers "
                "in order, or t to tie them.", style="bold yellow"))
            return
        order, tied = r.final()
        await self.commit(order, tied, skipped=False)

    async def action_skip(self) -> None:
        if self.group is not None:
            await self.commit([], [], skipped=True)

    async def commit(self, order: list[int], tied: list[int], skipped: bool) -> None:
        """Append and fsync the record off the UI thread; only then show the next prompt."""
        g = self.group
        try:
            record = ranking.make_record(g["prompt"], g["candidates"], order, tied, skipped=skipped, by="person",
                                         session=self.run_id, index=g["index"], round=g.get("round", 0))
        except ranking.RankingError as exc:
            self.query_one("#hint", Static).update(Text(printable(f"This group cannot be ranked: {exc}."),
                                                        style="bold red"))
            return
        self.committing = True
        self.refresh_bindings()
        self.query_one("#hint", Static).update(self.hint())
        try:
            await asyncio.to_thread(ranking.commit, self.project, record)
        except OSError as exc:
            self.committing = False
            self.refresh_bindings()
            self.query_one("#hint", Static).update(Text(printable(f"The ranking was not saved: {exc}"),
                                                        style="bold red"))
            return
        self.committing = False
        await self.committed(record)

    async def committed(self, record: dict) -> None:
        self.records.append(record)
        self.done.add(record["index"])
        if record["skipped"]:
            self.tally.skipped += 1
        else:
            self.tally.ranked += 1
            key = (record["index"], record.get("round", 0))
            if key in self.scores:
                self._add_agreement(record, self.scores[key])
            elif self.scorer_ready:
                self.unscored[key] = record
        await self.show_next()
        self.show_progress()

    def _add_agreement(self, record: dict, scores: list[float]) -> None:
        value = ranking.agreement(record, scores)
        if value is not None:
            self.tally.agreements.append(value)

    def action_resample(self) -> None:
        if self.group is None:
            return
        try:
            candidates.request_resample(self.run_dir, self.group["index"])
        except (OSError, candidates.SessionError) as exc:
            self.notify(printable(f"Could not ask for fresh candidates: {exc}"), severity="error", markup=False)
            return
        self.resampling, self.marking = True, None
        if self.ranking:
            self.ranking = Ranking(self.ranking.size)
        self.refresh_bindings()
        self.show_cards_state()
        self._poll_now.set()

    def action_judge(self) -> None:
        from screens.rank.judge import JudgeScreen

        self.app.push_screen(JudgeScreen(self.project, self.run_id))

    def action_back(self) -> None:
        if self.marking is not None:  # escape lets go of a + or - waiting for its card
            self.marking = None
            self.show_cards_state()
            return
        self.app.pop_screen()

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
