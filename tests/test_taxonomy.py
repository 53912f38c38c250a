"""The taxonomy: the shipped category files, user overrides, and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.grade.judge import output_schema
from deploysim.grade.rules import BUILTIN_RULE_SETS, rule_set_for
from deploysim.grade.taxonomy import DEFAULT_ORDER, TaxonomyError, load_category_file, load_taxonomy

DISALLOWED = ["mental_health", "abuse_harassment", "sexual", "violent_wrongdoing", "nonviolent_wrongdoing",
              "bio_risk", "violence", "extremism", "emotional_reliance", "self_harm", "hate"]
MISALIGNMENT = ["confirmation_hacking", "claiming_real_world_experience", "misrepresenting_work_completion",
                "promising_background_tasks", "fabricated_facts", "lying_about_tools", "calculator_hacking",
                "concealed_uncertainty"]

VALID = '''
id = "pirate_speak"
name = "Pirate speak"
group = "misalignment"
definition = "The response talks like a pirate."
counts = ["Arr, matey."]
does_not_count = ["Plain English."]

[grader]
default = "rules"
offline = "rules"
rules = "keywords"

[keywords]
patterns = ["\\\\barr+\\\\b", "matey"]

[judge]
template = "Is this pirate speak? {{ transcript }}"

[judge.output]
label = "true if pirate speak"
rationale = "why"
severity = "0-4"
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_taxonomy_has_the_21_categories_in_groups() -> None:
    tax = load_taxonomy()
    assert tax.ids == DEFAULT_ORDER
    assert [c.id for c in tax if c.group == "disallowed"] == DISALLOWED
    assert [c.id for c in tax if c.group == "misalignment"] == MISALIGNMENT
    assert [c.id for c in tax if c.group == "refusal"] == ["refusal", "over_refusal"]


def test_every_default_category_is_complete_and_gradable_offline() -> None:
    for c in load_taxonomy():
        assert c.definition.strip() and c.counts and c.does_not_count, c.id
        assert "{{ transcript }}" in c.judge.template
        assert c.grader.offline in ("classifier", "rules")
        assert c.grader.rules in BUILTIN_RULE_SETS, c.id  # every category also has a rule fallback
        assert rule_set_for(c).limits, c.id  # and its rule set states its limits
        schema = output_schema(c)
        assert schema["additionalProperties"] is False
        assert ("severity" in schema["properties"]) == (c.group == "misalignment")
        assert set(schema["required"]) == set(schema["properties"])


def test_user_file_overrides_a_default_by_id(tmp_path: Path) -> None:
    override = VALID.replace('id = "pirate_speak"', 'id = "hate"').replace('group = "misalignment"',
                                                                           'group = "disallowed"')
    override = override.replace('severity = "0-4"\n', "")
    write(tmp_path, "hate.toml", override)
    tax = load_taxonomy([tmp_path / "hate.toml"])
    assert len(tax) == 21
    assert tax["hate"].name == "Pirate speak"
    assert tax["hate"].source == str(tmp_path / "hate.toml")
    assert tax.ids.index("hate") == DEFAULT_ORDER.index("hate")  # keeps its place


def test_user_folder_adds_categories(tmp_path: Path) -> None:
    write(tmp_path, "pirate.toml", VALID)
    tax = load_taxonomy([tmp_path])
    assert len(tax) == 22 and "pirate_speak" in tax
    assert tax.ids.index("pirate_speak") < tax.ids.index("refusal")  # grouped with misalignment
    assert load_taxonomy([tmp_path], builtin=False).ids == ("pirate_speak",)


def test_select_keeps_order_and_rejects_unknown_ids() -> None:
    tax = load_taxonomy()
    assert tax.select(["refusal", "hate"]).ids == ("hate", "refusal")
    with pytest.raises(TaxonomyError, match=r"unknown category id.*nope"):
        tax.select(["hate", "nope"])
    with pytest.raises(KeyError, match="unknown category 'nope'"):
        tax["nope"]


@pytest.mark.parametrize(("edit", "message"), [
    (('group = "misalignment"', 'group = "misc"'), r"group: Input should be 'disallowed'"),
    (('name = "Pirate speak"', 'name = "P"\ncolour = "red"'), r"colour: unknown field"),
    (('id = "pirate_speak"', 'id = "Pirate Speak"'), r"id: must be lowercase"),
    (("{{ transcript }}", "{{ transcrip }}"), r"unknown variable\(s\) transcrip"),
    (("Is this pirate speak? {{ transcript }}", "no placeholder"), r"must contain \{\{ transcript \}\}"),
    (("Is this pirate speak?", "{% if %}"), r"judge.template: syntax error on template line 1"),
    (('severity = "0-4"\n', ""), r"a misalignment category must describe severity"),
    (('rules = "keywords"', 'rules = "no_such_rules"'), r"grader.rules: 'no_such_rules' is not a rule set"),
    (('offline = "rules"', 'offline = "classifier"'), r"grader.classifier_head: required"),
    (('counts = ["Arr, matey."]', "counts = []"), r"counts: Tuple should have at least 1 item"),
    (('"matey"]', '"(unclosed"]'), r"not a valid regular expression"),
])
def test_invalid_files_fail_with_file_and_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in VALID
    path = write(tmp_path, "bad.toml", VALID.replace(old, new))
    with pytest.raises(TaxonomyError, match=message) as err:
        load_category_file(path)
    assert str(path) in str(err.value)


def test_severity_on_a_non_misalignment_category_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.toml", VALID.replace('group = "misalignment"', 'group = "refusal"'))
    with pytest.raises(TaxonomyError, match="only misalignment categories grade severity"):
        load_category_file(path)


def test_toml_syntax_error_and_missing_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.toml", 'id = "x"\nname = \n')
    with pytest.raises(TaxonomyError, match=r"broken.toml: TOML syntax error"):
        load_taxonomy([path])
    with pytest.raises(TaxonomyError, match="no such category file or folder"):
        load_taxonomy([tmp_path / "missing.toml"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TaxonomyError, match=r"holds no \*\.toml"):
        load_taxonomy([empty])


def test_two_user_files_with_one_id_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", VALID)
    write(tmp_path, "b.toml", VALID)
    with pytest.raises(TaxonomyError, match=r"'pirate_speak' already defined in .*a\.toml"):
        load_taxonomy([tmp_path])
