"""Forms of the experiment pages: the list's filters and the launch form, which is generated from
the documented hyperparameter schema (experiments.hyperparameters.FIELDS)."""

from django import forms
from django.core.exceptions import ImproperlyConfigured

from experiments import hyperparameters, selectors
from experiments.models import Experiment, TaskSuite


class ExperimentFilterForm(forms.Form):
    """The list's filters and sort order (GET); an unknown value is ignored, not an error page."""

    status = forms.ChoiceField(required=False)
    suite = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    model = forms.ChoiceField(required=False)
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    algorithm = forms.ChoiceField(required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("newest", "newest first"),
            ("oldest", "oldest first"),
            ("best", "best held-out reward"),
            ("status", "status"),
            ("name", "name"),
        ],
    )

    def __init__(self, data, choices):
        super().__init__(data)
        anything = [("", "any")]
        self.fields["status"].choices = anything + Experiment.STATUSES
        self.fields["algorithm"].choices = anything + Experiment.ALGORITHMS
        for name in ("suite", "model", "owner"):
            self.fields[name].choices = anything + list(choices[name])

    def filters(self):
        """(filters, sort) of the valid fields; invalid ones are dropped."""
        self.is_valid()
        cleaned = {name: self.cleaned_data.get(name) for name in self.fields if name not in self.errors}
        sort = cleaned.pop("sort", None) or "newest"
        return {k: v for k, v in cleaned.items() if v not in (None, "")}, sort


def list_filters(params):
    """The list's (form, filters, sort) for the query string ``params``."""
    form = ExperimentFilterForm(params, selectors.experiment_filter_choices())
    filters, sort = form.filters()
    return form, filters, sort


# --- The launch form --------------------------------------------------------------------------------

KNOWN_MODELS = ("tiny-random", "smollm2-135m")
LAUNCH_FIELDS = ("name", "suite", "model", "algorithm", "clone")
# Presets fill the form; the user can change anything before launching.
PRESETS = {
    "smoke": {
        "label": "Quick smoke test (tiny-random)",
        "model": "tiny-random",
        "algorithm": Experiment.GRPO,
        "hyperparameters": {
            "iterations": 2,
            "group_size": 2,
            "tasks_per_iteration": 2,
            "train_variants": 1,
            "max_new_tokens": 32,
            "eval_every": 0,
        },
    },
    "smollm2-grpo": {
        "label": "SmolLM2 GRPO",
        "model": "smollm2-135m",
        "algorithm": Experiment.GRPO,
        "hyperparameters": {"iterations": 50, "group_size": 8, "tasks_per_iteration": 8, "eval_every": 10},
    },
    "sft-grpo": {
        "label": "SFT then GRPO",
        "model": "smollm2-135m",
        "algorithm": Experiment.SFT_GRPO,
        "hyperparameters": {
            "sft_epochs": 2,
            "iterations": 30,
            "group_size": 8,
            "tasks_per_iteration": 8,
            "eval_every": 10,
        },
    },
}


def _form_field(spec):
    """The form field of one hyperparameters.Field: its type, bounds, default and help text."""
    common = {"label": spec.name, "help_text": spec.help, "initial": spec.default}
    if spec.type == hyperparameters.INT:
        return forms.IntegerField(min_value=spec.min, max_value=spec.max, **common)
    if spec.type == hyperparameters.FLOAT:
        return forms.FloatField(
            min_value=spec.min, max_value=spec.max, widget=forms.NumberInput(attrs={"step": "any"}), **common
        )
    if spec.type == hyperparameters.CHOICE:
        return forms.ChoiceField(choices=[(c, c) for c in spec.choices], **common)
    common["initial"] = ", ".join(spec.default)
    return forms.CharField(required=False, **common)


def shown_value(spec, value):
    """A hyperparameter's value as the form shows it (lists comma-separated)."""
    if spec.type == hyperparameters.LIST:
        return ", ".join(value)
    return value


class LaunchForm(forms.Form):
    """Suite, model, algorithm and every hyperparameter of the schema. ``clean()`` checks the
    hyperparameters with hyperparameters.validate, so the form and the command line agree."""

    name = forms.CharField(max_length=120, required=False, help_text="empty: suite, algorithm and model")
    suite = forms.ModelChoiceField(queryset=None, to_field_name="name", empty_label=None)
    model = forms.CharField(
        max_length=200,
        initial="tiny-random",
        help_text="a registry name (tiny-random, smollm2-135m), a Hugging Face id or a local path",
        widget=forms.TextInput(attrs={"list": "known-models"}),
    )
    algorithm = forms.ChoiceField(choices=Experiment.ALGORITHMS, initial=Experiment.GRPO)
    clone = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["suite"].queryset = TaskSuite.objects.order_by("name").only("pk", "name")
        for spec in hyperparameters.FIELDS:
            if spec.name in LAUNCH_FIELDS:
                raise ImproperlyConfigured(f"hyperparameter {spec.name!r} clashes with a launch form field")
            self.fields[spec.name] = _form_field(spec)

    def hyperparameter_fields(self):
        return [self[spec.name] for spec in hyperparameters.FIELDS]

    def launch_fields(self):
        return [self[name] for name in ("suite", "model", "algorithm", "name")]

    def clean(self):
        cleaned = super().clean()
        overrides = {spec.name: cleaned[spec.name] for spec in hyperparameters.FIELDS if spec.name in cleaned}
        try:
            cleaned["hyperparameters"] = hyperparameters.validate(overrides)
        except hyperparameters.HyperparameterError as err:
            for problem in err.problems:
                self.add_problem(problem)
        return cleaned

    def add_problem(self, message):
        """A problem from the schema or from start_experiment, shown at the field it names (its
        messages start with the hyperparameter's name), or above the form."""
        field = message.split(" ", 1)[0].strip("'\"")
        if field in hyperparameters.BY_NAME and field in self.fields and field not in self.errors:
            self.add_error(field, message)
        else:
            self.add_error(None, message)


def launch_initial(*, preset=None, parent=None):
    """The form's initial values: a preset's, or a parent experiment's config for "clone"."""
    initial = {}
    if parent is not None:
        initial.update(
            name=f"{parent.name} (clone of #{parent.pk})"[:120],
            suite=parent.suite.name,
            model=parent.model_name,
            algorithm=parent.algorithm,
            clone=parent.pk,
        )
        for spec in hyperparameters.FIELDS:
            if spec.name in parent.hyperparameters:
                initial[spec.name] = shown_value(spec, parent.hyperparameters[spec.name])
    elif preset in PRESETS:
        chosen = PRESETS[preset]
        initial.update(model=chosen["model"], algorithm=chosen["algorithm"], **chosen["hyperparameters"])
    return initial


def config_of(experiment):
    """An experiment's launch settings as flat ``{key: value}`` (what config diffs compare)."""
    values = {
        "suite": experiment.suite.name,
        "model": experiment.model_name,
        "algorithm": experiment.algorithm,
    }
    return values | dict(experiment.hyperparameters)


def config_diff(before, after):
    """``[(key, before, after)]`` of the keys whose values differ (lists compared as lists)."""
    keys = list(before) + [k for k in after if k not in before]
    return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]
