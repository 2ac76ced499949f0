"""Pick a method and set its parameters in a form generated from the params dataclass.

Methods are listed by kind (training first, then those that generate data). A preset fills
the form; the panel under the method says what each training mode would train and need in
memory for the values in the form (worked out by a child process).
"""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Header, Input, Label, OptionList, Select, Static, Switch
from textual.widgets.option_list import Option

from screens.messages import RunStarted, forward_failure
from screens.reward_dry_run import RewardDryRun
from screens.widgets.data_mix import DataMix
from screens.widgets.footer import KeyFooter
from screens.widgets.mode_estimate import ModeEstimate
from screens.widgets.where import WhereFields
from workbench import project as projects
from workbench import registry
from workbench.params import ParamError, ParamInfo, coerce, describe
from workbench.registry.presets import presets_for
from workbench.registry.specs import make_spec

GROUP_TITLES = {"method": "Mode", "training": "Training", "lora": "LoRA adapter", "qlora": "QLoRA (4-bit base)",
                "schedule": "Evaluation and saving"}
KIND_TITLES = {"train": "Train a model", "generate": "Generate data"}
ESTIMATE_FIELDS = {"mode", "lora_r", "target_modules", "use_dora", "batch_size", "max_length",
                   "gradient_checkpointing", "double_quant", "grad_accum", "lora_dropout", "num_generations",
                   "max_completion_length", "max_prompt_length", "max_new_tokens", "mini_batch_size", "beta",
                   "teacher", "teacher_cache", "reward_model"}  # the fields the estimate depends on


class ParamValidator(Validator):
    """The engine's own check of one parameter, so the form and the CLI agree."""

    def __init__(self, info: ParamInfo) -> None:
        super().__init__()
        self.info = info

    def validate(self, value: str) -> ValidationResult:
        try:
            coerce(self.info, value)
        except ParamError as exc:
            return self.failure(str(exc))
        return self.success()


def field_widget(info: ParamInfo, value) -> Widget:
    """Choices as a Select, booleans as a Switch, everything else as a checked Input."""
    wid = f"param-{info.name}"
    if info.choices:
        value = value if value in info.choices else info.default
        return Select([(c, c) for c in info.choices], value=value, allow_blank=False, id=wid, compact=True)
    if info.kind is bool:
        return Switch(value=bool(value), id=wid)
    return Input(value=str(value), validators=[ParamValidator(info)], id=wid, compact=True)


def raw_value(widget: Widget) -> str:
    if isinstance(widget, Switch):
        return "true" if widget.value else "false"
    return str(widget.value)


def method_options() -> list[Option]:
    """The methods under a heading per kind: training first, then the generating ones, then any other."""
    kinds = sorted({m.kind for m in registry.METHODS.values()},
                   key=lambda k: (list(KIND_TITLES).index(k) if k in KIND_TITLES else len(KIND_TITLES), k))
    options = []
    for kind in kinds:
        options.append(Option(f"[b]{KIND_TITLES.get(kind, kind.title())}[/b]", id=f"kind:{kind}", disabled=True))
        options += [Option(f"  {escape(m.title)} ({m.name})", id=m.name) for m in registry.of_kind(kind)]
    return options


def preset_row(method_name: str) -> Widget:
    """A Select of the method's presets (choosing one fills the form), or a note that it has none."""
    names = list(presets_for(method_name))
    if not names:
        return Horizontal(Label("preset", classes="name"), Static("none for this method", classes="help"),
                          classes="field", id="preset-row")
    return Horizontal(
        Label("preset", classes="name"),
        Select([(n, n) for n in names], prompt="choose…", id="preset", compact=True),
        Static("fills the fields it sets; the others keep their values", classes="help", markup=False),
        classes="field", id="preset-row")


def set_widget(widget: Widget, value) -> None:
    if isinstance(widget, Switch):
        widget.value = bool(value)
    elif isinstance(widget, Select):
        widget.value = value
    else:
        widget.value = str(value)


def form_widgets(params_cls: type, prefill: dict) -> list[Widget]:
    """One row per field (name, input, help), under a title per group; `prefill` overrides defaults."""
    widgets: list[Widget] = []
    group = None
    for info in describe(params_cls):
        if info.group != group:
            group = info.group
            widgets.append(Static(GROUP_TITLES.get(group, group.title()), classes="group"))
        bounds = " · ".join(b for b in (
            f"min {info.min:g}" if info.min is not None else "",
            f"max {info.max:g}" if info.max is not None else "") if b)
        widgets.append(Horizontal(
            Label(info.name, classes="name"),
            field_widget(info, prefill.get(info.name, info.default)),
            Static(info.help + (f" ({bounds})" if bounds else ""), classes="help", markup=False),
            classes="field"))
        widgets.append(Static(id=f"error-{info.name}", classes="error", markup=False))
    return widgets


# Narrower than this, a field's help goes under its name and value: beside them (left pane 44, name and
# value 20 each, paddings) it would be a column of fewer than 28 characters, a word or two a line.
STACK_BELOW = 118


class MethodScreen(Screen):
    """Choose the method on the left, its parameters on the right, ctrl+s to start."""

    CSS_PATH = "styles/method.tcss"
    AUTO_FOCUS = "#form Select, #form Input, #form Switch"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", id="method.start"),
        Binding("escape", "back", "Back", id="method.back"),
    ]

    def __init__(self, project: str, method: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.method = registry.get(method or next(iter(registry.METHODS)))
        self.starting = False
        try:
            self.project_info: projects.Project | None = projects.load(project)
        except projects.ProjectError:
            self.project_info = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with VerticalScroll(id="left"):
                yield Static("Method", classes="section")
                yield OptionList(*method_options(), id="methods")
                yield Static(id="method-info")
                yield Static(id="data-info", markup=False)
                yield ModeEstimate(id="estimate")
                yield Static("[b]tab[/b] next field  ·  [b]ctrl+s[/b] start the run  ·  [b]escape[/b] back",
                             classes="keys")
            with Vertical(id="right"):
                if self.train_sets():
                    yield DataMix(self.train_sets(), id="data-mix")
                yield VerticalScroll(preset_row(self.method.name), *form_widgets(self.method.params, self.prefill()),
                                     WhereFields(id="where"), id="form")
                yield Button("Dry run rewards", id="dry-run", compact=True)
        yield Static(id="launch-error", markup=False)
        yield KeyFooter()

    def on_resize(self) -> None:
        # the help beside a field when it has room for a readable column, else on the lines below it
        self.set_class(self.size.width < STACK_BELOW, "-stacked")

    def on_mount(self) -> None:
        self.sub_title = f"{self.project} · new run"
        option_list = self.query_one("#methods", OptionList)
        option_list.highlighted = option_list.get_option_index(self.method.name)
        self.show_method_info()

    def show_method_info(self) -> None:
        m = self.method
        self.query_one("#method-info", Static).update(
            f"{escape(m.summary)}\n\nNeeds data of kind: [b]{' or '.join(m.data_kinds)}[/b]")
        self.query_one("#data-info", Static).update(self.data_text())
        self.query_one("#dry-run", Button).display = self.has_rewards()
        estimate = self.query_one("#estimate", ModeEstimate)
        estimate.display = m.kind == "train" and self.project_info is not None
        self.refresh_estimate()

    def has_rewards(self) -> bool:
        """Methods that score answers with reward functions (GRPO, RLOO) can try them on samples first."""
        return any(info.name == "rewards" for info in describe(self.method.params))

    def refresh_estimate(self) -> None:
        estimate = self.query_one("#estimate", ModeEstimate)
        if not estimate.display:
            return
        values, bad = self.form_values()
        picked = self.query_one(DataMix).picked() if self.query(DataMix) else []
        estimate.request(self.project, self.method.name, None if bad else values, picked)

    def prefill(self) -> dict:
        """The values this project sets for the method (the demo tunes its own)."""
        return self.project_info.defaults.get(self.method.name, {}) if self.project_info else {}

    def train_sets(self) -> list[projects.DatasetEntry]:
        return [d for d in self.project_info.datasets if d.split == "train"] if self.project_info else []

    def data_text(self) -> str:
        """What the training-data section does not say: evaluation, misfits, project settings."""
        info = self.project_info
        if info is None:
            return f"No project named '{self.project}'."
        train = self.train_sets()
        if not train:
            return "This project has no training data yet: go back (escape) and import a file (i)."
        held = [d for d in info.datasets if d.split == "eval"]
        lines = ["Evaluates on: " + ", ".join(f"{d.name} ({d.records})" for d in held)] if held else []
        wrong = [d.name for d in train + held if d.kind not in self.method.data_kinds and d.kind != "mixed"]
        if wrong:
            lines.append(f"Not usable by this method: {', '.join(wrong)}.")
        if self.prefill():
            lines.append(f"Set by the project: {', '.join(sorted(self.prefill()))}.")
        return "\n".join(lines)

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id == self.method.name or str(event.option.id).startswith("kind:"):
            return
        if event.option_list.highlighted != event.option_index:
            return  # a highlight overtaken by a later one (the list's own first highlight, as it mounts)
        self.method = registry.get(event.option.id)
        form = self.query_one("#form", VerticalScroll)
        where = self.query_one(WhereFields)  # where it runs stays as the person set it
        await form.remove_children([child for child in form.children if child is not where])
        await form.mount_all([preset_row(self.method.name), *form_widgets(self.method.params, self.prefill())],
                             before=where)
        self.show_method_info()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("param-") and event.validation_result is not None:
            name = event.input.id.removeprefix("param-")
            failures = event.validation_result.failure_descriptions
            self.show_error(name, failures[0] if failures else "")
            self.field_changed(name)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "preset":
            if event.value is not Select.BLANK:
                self.apply_preset(str(event.value))
        elif event.select.id and event.select.id.startswith("param-"):
            self.field_changed(event.select.id.removeprefix("param-"))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id and event.checkbox.id.startswith("pick-"):  # the datasets read: their longest record
            self.refresh_estimate()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id and event.switch.id.startswith("param-"):
            self.field_changed(event.switch.id.removeprefix("param-"))

    def field_changed(self, name: str) -> None:
        if name in ESTIMATE_FIELDS:
            self.refresh_estimate()

    def apply_preset(self, name: str) -> None:
        """Fill the fields the preset sets; the estimate follows from their change events."""
        for field, value in presets_for(self.method.name).get(name, {}).items():
            set_widget(self.query_one(f"#param-{field}"), value)
        self.notify(f"Preset '{name}' filled the form.", timeout=3)

    def show_error(self, name: str, text: str) -> None:
        found = self.query(f"#error-{name}")
        if not found:
            return  # a field of a form replaced since its change was sent
        error = found.first(Static)
        error.update(text)
        error.display = bool(text)

    def form_values(self) -> tuple[dict[str, str], dict[str, str]]:
        """The form as strings for the engine, and {field: problem} for the fields it rejects."""
        values, bad = {}, {}
        for info in describe(self.method.params):
            raw = raw_value(self.query_one(f"#param-{info.name}"))
            try:
                coerce(info, raw)
            except ParamError as exc:
                bad[info.name] = str(exc)
                continue
            values[info.name] = raw
        return values, bad

    def read_values(self) -> tuple[dict[str, str], list[str]]:
        """The form's values, each rejected field's problem shown under it."""
        values, bad = self.form_values()
        for info in describe(self.method.params):
            self.show_error(info.name, bad.get(info.name, ""))
        return values, list(bad)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "dry-run":
            self.open_dry_run()

    def open_dry_run(self) -> None:
        """Try the reward functions on a few samples before a run (the screen for it is optional)."""
        launch_error = self.query_one("#launch-error", Static)
        values, bad = self.read_values()
        if bad:
            launch_error.update(f"Fix {len(bad)} field(s) before the dry run: {', '.join(bad)}.")
            return
        mix, problem = self.query_one(DataMix).read() if self.query(DataMix) else (None, "")
        if problem:
            launch_error.update(f"Fix the training data before the dry run: {problem}")
            return
        datasets = list(mix) if isinstance(mix, dict) else [d.name for d in self.train_sets()]
        self.app.push_screen(RewardDryRun(self.project, self.method.name, values, datasets))

    def action_start(self) -> None:
        if self.starting:
            return
        values, bad = self.read_values()
        launch_error = self.query_one("#launch-error", Static)
        if bad:
            launch_error.update(f"Fix {len(bad)} field(s) before starting: {', '.join(bad)}.")
            self.query_one(f"#param-{bad[0]}").focus()
            return
        mix, problem = self.query_one(DataMix).read() if self.query(DataMix) else (None, "")
        if problem:
            launch_error.update(f"Fix the training data before starting: {problem}")
            return
        target, settings, problem = self.query_one(WhereFields).read()
        if problem:
            launch_error.update(f"Fix where it runs before starting: {problem}")
            return
        where = " on Slurm" if target == "slurm" else ""
        launch_error.update(f"Starting a {self.method.title.lower()} run{where}…")
        self.starting = True
        estimate = self.query_one("#estimate", ModeEstimate).current() if target == "local" else {}
        self.start_run(self.method.name, values, mix, target, settings, estimate)

    @work(thread=True, exclusive=True, exit_on_error=False, name="Starting the run")
    def start_run(self, method: str, values: dict[str, str], mix: dict[str, float] | str | None,
                  target: str = "local", settings: list[str] | None = None, estimate: dict | None = None) -> None:
        from workbench.jobs import launch
        from workbench.jobs.slurm import SlurmError
        from workbench.jobs.targets import runtime_from

        try:
            spec = make_spec(self.project, method, values, mix=mix, runtime=runtime_from(target, settings or []))
            spec.estimate = estimate or {}  # what the form showed, to set beside the measured peak at the end
            launch.start(spec, wait_for_start=False)
        except (launch.LaunchError, SlurmError, ParamError, projects.ProjectError, OSError) as exc:
            self.app.call_from_thread(self.launch_failed, str(exc))
            return
        self.post_message(RunStarted(self.project, spec.id))

    def launch_failed(self, text: str) -> None:
        self.starting = False
        self.query_one("#launch-error", Static).update(text)

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_worker_state_changed(self, event) -> None:
        if event.worker.is_finished and event.worker.name == "Starting the run":
            self.starting = False
        forward_failure(self, event)
