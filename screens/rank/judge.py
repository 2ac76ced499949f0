"""Let a judge model rank a sampling session: pick the judge, edit what it is asked, start it.

The judge is a run of the method `judge` (a worker process). Its rankings go to the
project's rankings file like a person's, marked `judge:<model>`, so the `rankings`
dataset and the agreement figures can use both.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static, TextArea

from screens.messages import forward_failure
from workbench import locations
from workbench import project as projects
from workbench.jobs import store
from workbench.params import ParamError
from workbench.ranking.judge_params import (
    PLACEHOLDERS,
    TemplateError,
    judging_template,
    save_judge_template,
    template_path,
)
from workbench.registry.specs import make_spec
from workbench.run.spec import JobSpec
from workbench.terminal import printable

METHOD = "judge"


class JudgeScreen(ModalScreen[str | None]):
    """Dismissed with the judge run's id once it is launched (None when closed)."""

    CSS_PATH = "judge.tcss"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start judge", id="rank_judge.start"),
        Binding("escape", "close", "Close", id="rank_judge.close"),
    ]

    def __init__(self, project: str, session: str) -> None:
        super().__init__()
        self.project, self.session = project, session
        self.starting = False
        self.models = store.model_choices(project)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Judge session [b]{self.session}[/b] with a model", classes="title")
            with Horizontal(classes="row"):
                yield Label("Judge model", classes="name")
                yield Select([(c.label, c.ref) for c in self.models], value="base", allow_blank=False,
                             id="judge-model", compact=True)
            with Horizontal(classes="row"):
                yield Label("or a model path", classes="name")
                yield Input(placeholder="a model folder, an adapter folder or a .gguf file (wins over the list)",
                            id="judge-path", compact=True)
            with Horizontal(classes="row"):
                yield Label("Groups (0 = all)", classes="name")
                yield Input("0", id="max-groups", type="integer", compact=True)
            yield TextArea(id="template", soft_wrap=True, show_line_numbers=False)
            yield Static(f"The judge grades each answer alone from this prompt, which must hold "
                         f"{' and '.join(PLACEHOLDERS)}; it is saved for the project when the judge starts.",
                         classes="help", markup=False)
            yield Static(id="status", markup=False)
            yield Static("[b]ctrl+s[/b] saves the prompt and starts the judge  ·  [b]escape[/b] closes",
                         classes="keys")

    def on_mount(self) -> None:
        self.query_one("#template", TextArea).border_title = "the judge's prompt"
        self.load_template()

    @work(thread=True, exit_on_error=False, name="Reading the judge's prompt")
    def load_template(self) -> None:
        try:
            text = judging_template(self.project)
        except (TemplateError, OSError) as exc:
            self.app.call_from_thread(self.show_status, f"{exc} Fix it here and start again.", True)
            path = template_path(self.project)
            text = path.read_text(encoding="utf-8") if path.exists() else ""
        # A template is a file anyone may have written: its control characters are shown as marks (and are
        # saved so, if the person starts the judge with it), never sent to the terminal.
        self.app.call_from_thread(self.query_one("#template", TextArea).load_text, printable(text))

    def judge_ref(self) -> str:
        path = self.query_one("#judge-path", Input).value.strip()
        return path or str(self.query_one("#judge-model", Select).value)

    def action_start(self) -> None:
        if self.starting:
            return
        raw = self.query_one("#max-groups", Input).value.strip() or "0"
        if not raw.isdigit():
            self.show_status("Groups: a whole number, 0 for every group of the session.", True)
            return
        self.starting = True
        self.show_status("Starting the judge…")
        self.start_judge(self.judge_ref(), int(raw), self.query_one("#template", TextArea).text)

    @work(thread=True, exclusive=True, exit_on_error=False, name="Starting the judge")
    def start_judge(self, ref: str, max_groups: int, template: str) -> None:
        from workbench.jobs import launch

        try:
            save_judge_template(self.project, template)
            datasets = [source.dataset for source in JobSpec.load(locations.run_dir(self.project, self.session)).train]
            spec = make_spec(self.project, METHOD, {"judge_model": ref, "session": self.session,
                                                           "max_groups": max_groups}, datasets=datasets)
            launch.start(spec, wait_for_start=False)
        except (TemplateError, launch.LaunchError, ParamError, projects.ProjectError, OSError, KeyError) as exc:
            self.app.call_from_thread(self.start_failed, str(exc))
            return
        self.app.call_from_thread(self.started, spec.id)

    def started(self, run_id: str) -> None:
        self.app.notify(f"Judge run {run_id} started: its rankings join this session's, marked judge:<model>. "
                        "Follow it from the project's runs.", timeout=8, markup=False)
        self.dismiss(run_id)

    def start_failed(self, text: str) -> None:
        self.starting = False
        self.show_status(text, True)

    def show_status(self, text: str, error: bool = False) -> None:
        if self.is_attached:
            self.query_one("#status", Static).update(Text(printable(text), style="bold red" if error else "italic"))

    def action_close(self) -> None:
        self.dismiss(None)

    def on_worker_state_changed(self, event) -> None:
        forward_failure(self, event)
