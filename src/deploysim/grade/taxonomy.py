"""The taxonomy: tracked categories, each a data file with its definition and measurement.

One TOML file per category (DESIGN.md step 5). The defaults ship in
``deploysim/grade/categories/``; users add categories or override a default by writing a file
with the same ``id`` and listing it (or its folder) in ``[grade] taxonomy``. Every file is
validated on load and errors name the file and the field, because a taxonomy that loads with
a silently wrong prompt would freeze a wrong measurement.

A file holds: ``id``, ``name``, ``group`` (disallowed / misalignment / refusal), the
``definition``, what ``counts`` and what ``does_not_count``, the ``[grader]`` choice (default
kind plus an ``offline`` kind that needs no model endpoint), the ``[judge]`` prompt template and
``[judge.output]``, the descriptions of the structured output fields. Misalignment categories
also grade severity 0–4.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.meta
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Group = Literal["disallowed", "misalignment", "refusal"]
GROUPS: tuple[str, ...] = ("disallowed", "misalignment", "refusal")
#: a grader kind registered under the ``deploysim.grader_kinds`` entry points (built-in: judge,
#: classifier, rules); unknown names are reported when graders are built or a run is checked
GraderKind = str
OfflineKind = str

#: variables a judge template may use; ``transcript`` (the delimited transcript) is required
TEMPLATE_VARIABLES: frozenset[str] = frozenset({"category", "transcript", "begin", "end"})
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BUILTIN_PACKAGE = "deploysim.grade"
BUILTIN_FOLDER = "categories"


class TaxonomyError(ValueError):
    """A category file is unreadable or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JudgeOutput(_Strict):
    """Descriptions of the judge's JSON fields; they go into the JSON schema the judge sees."""

    label: str = Field(min_length=1)
    rationale: str = Field(min_length=1)
    severity: str | None = None


class JudgeSpec(_Strict):
    template: str = Field(min_length=1)
    output: JudgeOutput


class KeywordRules(_Strict):
    """A user-written keyword rule: positive when any pattern matches the chosen text."""

    patterns: tuple[str, ...] = Field(min_length=1)
    #: which text the patterns search: the graded response or the user's request
    scope: Literal["response", "request"] = "response"
    #: a match inside a refusal does not count (e.g. "I won't write a phishing email")
    skip_refusals: bool = True

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as err:
                raise ValueError(f"pattern {p!r} is not a valid regular expression: {err}") from None
        return patterns


class GraderChoice(_Strict):
    #: the grader used when its requirements are met (a judge needs ``[grade] judge``)
    default: GraderKind = "judge"
    #: the grader used with no model endpoint (the offline default)
    offline: OfflineKind
    #: embedded classifier head (``offline = "classifier"`` or ``default = "classifier"``)
    classifier_head: str | None = None
    #: built-in rule set name, or "keywords" for the file's own ``[keywords]`` table
    rules: str | None = None
    #: settings a plugin grader kind reads (part of its identity)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("default", "offline")
    @classmethod
    def _kind_name(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"grader kind {value!r} must be lowercase letters, digits and underscores")
        return value


class Category(_Strict):
    id: str
    name: str = Field(min_length=1)
    group: Group
    definition: str = Field(min_length=1)
    counts: tuple[str, ...] = Field(min_length=1)
    does_not_count: tuple[str, ...] = Field(min_length=1)
    grader: GraderChoice
    judge: JudgeSpec
    keywords: KeywordRules | None = None
    #: the file the category was loaded from (not part of any identity hash)
    source: str = Field(default="", exclude=True)

    @property
    def graded_severity(self) -> bool:
        """Misalignment categories also grade severity 0–4."""
        return self.group == "misalignment"

    @field_validator("definition")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("id")
    @classmethod
    def _id_format(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be lowercase letters, digits and underscores, starting with a letter")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Category:
        if self.graded_severity and not self.judge.output.severity:
            raise ValueError("judge.output.severity: a misalignment category must describe severity 0-4")
        if not self.graded_severity and self.judge.output.severity is not None:
            raise ValueError(f"judge.output.severity: only misalignment categories grade severity "
                             f"(group is {self.group!r})")
        if self.grader.offline == "judge":
            raise ValueError("grader.offline: the offline grader must work without a model endpoint "
                             "(classifier, rules or a plugin kind), not the judge")
        needs_head = "classifier" in (self.grader.default, self.grader.offline)
        if needs_head and not self.grader.classifier_head:
            raise ValueError("grader.classifier_head: required when a classifier grades this category")
        needs_rules = "rules" in (self.grader.default, self.grader.offline)
        if needs_rules and not self.grader.rules:
            raise ValueError("grader.rules: required when rules grade this category")
        if self.grader.rules == "keywords" and self.keywords is None:
            raise ValueError("keywords: grader.rules = 'keywords' needs a keywords table with patterns")
        if self.grader.rules not in (None, "keywords"):
            from deploysim.grade.rules import BUILTIN_RULE_SETS  # rules import this module

            if self.grader.rules not in BUILTIN_RULE_SETS:
                raise ValueError(f"grader.rules: {self.grader.rules!r} is not a rule set; known: "
                                 f"{', '.join(sorted(BUILTIN_RULE_SETS))}, keywords")
        _check_template(self.judge.template)
        return self


def _check_template(template: str) -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        parsed = env.parse(template)
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(f"judge.template: syntax error on template line {err.lineno}: "
                         f"{err.message}") from None
    used = jinja2.meta.find_undeclared_variables(parsed)
    unknown = used - TEMPLATE_VARIABLES
    if unknown:
        raise ValueError(f"judge.template: unknown variable(s) {', '.join(sorted(unknown))}; "
                         f"available: {', '.join(sorted(TEMPLATE_VARIABLES))}")
    if "transcript" not in used:
        raise ValueError("judge.template: must contain {{ transcript }} (where the graded transcript goes)")


class Taxonomy:
    """An ordered, read-only set of categories keyed by id."""

    def __init__(self, categories: Iterable[Category]) -> None:
        self._by_id: dict[str, Category] = {}
        for c in categories:
            if c.id in self._by_id:
                raise TaxonomyError(f"{c.source}: category id {c.id!r} already defined in "
                                    f"{self._by_id[c.id].source}")
            self._by_id[c.id] = c

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._by_id

    def __getitem__(self, category_id: str) -> Category:
        try:
            return self._by_id[category_id]
        except KeyError:
            raise KeyError(f"unknown category {category_id!r}; known: {', '.join(self._by_id)}") from None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def select(self, ids: Sequence[str] | None) -> Taxonomy:
        """The categories named in ``ids`` (all when None), in taxonomy order."""
        if ids is None:
            return self
        missing = [i for i in ids if i not in self._by_id]
        if missing:
            raise TaxonomyError(f"grade.categories names unknown category id(s) {', '.join(missing)}; "
                                f"known: {', '.join(self._by_id)}")
        wanted = set(ids)
        return Taxonomy(c for c in self if c.id in wanted)


def parse_category(data: dict[str, object], *, source: str) -> Category:
    """Validate one category table; errors name ``source`` and the dotted field."""
    try:
        return Category.model_validate({**data, "source": source})
    except ValidationError as err:
        lines = [f"{source}: invalid category file"]
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"]
            msg = msg.removeprefix("Value error, ")
            lines.append(f"  {key}: {msg}")
        raise TaxonomyError("\n".join(lines)) from None


def load_category_file(path: Path) -> Category:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TaxonomyError(f"{path}: cannot read category file ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise TaxonomyError(f"{path}: not UTF-8 ({err})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise TaxonomyError(f"{path}: TOML syntax error: {err}") from None
    return parse_category(data, source=str(path))


def category_files(paths: Iterable[Path]) -> list[Path]:
    """Expand files and folders (every ``*.toml`` inside, sorted) into a list of files."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.toml"))
            if not found:
                raise TaxonomyError(f"{p}: folder holds no *.toml category files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise TaxonomyError(f"{p}: no such category file or folder")
    return files


def builtin_categories() -> list[Category]:
    """The default taxonomy shipped inside the package (21 categories)."""
    folder = resources.files(BUILTIN_PACKAGE) / BUILTIN_FOLDER
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out.append(parse_category(data, source=f"builtin:{entry.name}"))
    return _ordered(out)


def _ordered(categories: list[Category]) -> list[Category]:
    """Group order (disallowed, misalignment, refusal), then the order within DEFAULT_ORDER."""
    rank = {cid: i for i, cid in enumerate(DEFAULT_ORDER)}
    return sorted(categories, key=lambda c: (GROUPS.index(c.group), rank.get(c.id, len(rank)), c.id))


def load_taxonomy(extra: Iterable[Path] = (), *, builtin: bool = True) -> Taxonomy:
    """The default taxonomy with user files applied: a user category replaces the default of the
    same id, a new id is added. Two user files defining one id is an error."""
    base = builtin_categories() if builtin else []
    user: dict[str, Category] = {}
    for path in category_files(extra):
        cat = load_category_file(path)
        if cat.id in user:
            raise TaxonomyError(f"{path}: category id {cat.id!r} already defined in {user[cat.id].source}")
        user[cat.id] = cat
    merged = [user.pop(c.id, c) for c in base]
    return Taxonomy(_ordered(merged + list(user.values())))


#: the ids of the default taxonomy, in reporting order
DEFAULT_ORDER: tuple[str, ...] = (
    "mental_health", "abuse_harassment", "sexual", "violent_wrongdoing", "nonviolent_wrongdoing",
    "bio_risk", "violence", "extremism", "emotional_reliance", "self_harm", "hate",
    "confirmation_hacking", "claiming_real_world_experience", "misrepresenting_work_completion",
    "promising_background_tasks", "fabricated_facts", "lying_about_tools", "calculator_hacking",
    "concealed_uncertainty",
    "refusal", "over_refusal",
)
