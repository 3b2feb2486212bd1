"""The contract corpus is whole: every file is used by a test, and described."""

from pathlib import Path

from tests.contract import corpus
from tests.contract.test_webhooks import EDP_EVENTS

HERE = Path(__file__).parent


def test_every_corpus_file_is_used_by_a_contract_test():
    sources = "".join(p.read_text("utf-8") for p in HERE.glob("*.py"))
    # Named in a test's source, or in a list tests are parametrized with.
    listed = {a.file for a in corpus.ANSWERS + corpus.WEBHOOK_SHAPES} | set(EDP_EVENTS)
    used = {f for f in corpus.files() if f in sources or f in listed
            or f.replace(".http", ".json") in listed}
    assert sorted(set(corpus.files()) - used) == []


def test_every_corpus_file_has_a_line_in_the_provenance_table():
    readme = (corpus.CORPUS / "README.md").read_text("utf-8")
    for name in corpus.files():
        stem = Path(name).name.replace(".http", "").replace(".json", "")
        assert f"`{stem}" in readme, name
