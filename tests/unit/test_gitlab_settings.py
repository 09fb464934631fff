"""The [gitlab] settings section and the client's pure parts (ids in paths, projects, error texts)."""
from __future__ import annotations

from pathlib import Path

import pytest

from dqueue import config, masking
from dqueue.itemsync.gitlab import GitLabClient, Project, _ref


def test_defaults_match_the_contract_and_missing_names_what_to_set() -> None:
    g = config.load(environ={}).gitlab
    assert (g.per_page, g.concurrency, g.request_rate, g.delete_pass, g.ignore, g.lock_lease) == (
        100, 40, 600.0, False, (), 60.0)
    assert g.missing() == ["gitlab_base_url", "gitlab_group", "gitlab_token", "gitlab_webhook_url",
                           "gitlab_webhook_secret"]


def test_a_section_in_a_file_with_an_ignore_list(tmp_path: Path) -> None:
    f = tmp_path / "dqueue.toml"
    f.write_text('[gitlab]\nbase_url = "https://gitlab.example.org"\ngroup = "item-bank/items"\n'
                 'token = "glpat-123456"\nwebhook_url = "https://dq.example.org/webHook"\n'
                 'webhook_secret = "hook-secret-1"\nignore = ["12", "item-bank/items/sandbox"]\n'
                 'request_rate = 0\n')
    g = config.load(str(f), environ={}).gitlab
    assert g.missing() == [] and g.request_rate == 0.0
    assert g.ignored(12, "x") and g.ignored(5, "item-bank/items/sandbox") and not g.ignored(13, "item-bank/items/a")


def test_ignore_from_the_environment_is_comma_separated() -> None:
    g = config.load(environ={"DQUEUE_GITLAB_IGNORE": "12, 40"}).gitlab
    assert g.ignored(40, "") and not g.ignored(4, "")


@pytest.mark.parametrize(("name", "value"), [
    ("PER_PAGE", "101"), ("PER_PAGE", "0"), ("CONCURRENCY", "0"), ("REQUEST_RATE", "-1"),
    ("REQUEST_RATE", "nan"), ("LOCK_LEASE", "0"), ("BASE_URL", "gitlab.example.org"),
    ("WEBHOOK_URL", "ftp://x/y"), ("ATTEMPTS", "0")])
def test_values_out_of_range_are_refused_with_the_setting_named(name: str, value: str) -> None:
    with pytest.raises(config.ConfigError, match=f"gitlab_{name.lower()}"):
        config.load(environ={f"DQUEUE_GITLAB_{name}": value})


def test_token_and_webhook_secret_are_secrets() -> None:
    s = config.load(environ={"DQUEUE_GITLAB_TOKEN": "glpat-tok-777", "DQUEUE_GITLAB_WEBHOOK_SECRET": "whs-888"})
    assert {"glpat-tok-777", "whs-888"} <= set(config.secret_values(s))
    assert "glpat-tok-777" not in repr(s.gitlab) and "whs-888" not in repr(s.gitlab)
    try:
        masking.register_settings(s)
        assert "whs-888" not in masking.mask("hook token whs-888 refused")
    finally:
        masking.forget_secrets()


def test_group_and_project_references_are_url_encoded() -> None:
    assert _ref("item-bank/items") == "item-bank%2Fitems"
    assert _ref(42) == "42" and _ref("/a/b/") == "a%2Fb"


def test_project_from_gitlab_json() -> None:
    p = Project.from_json({"id": 7, "path": "i7", "path_with_namespace": "g/i7", "name": "I 7", "default_branch": None})
    assert p == Project(7, "g/i7", "I 7", None)
    other = Project.from_json({"id": "8", "path_with_namespace": "g/i8", "default_branch": "main"})
    assert (other.id, other.default_branch) == (8, "main")


def test_error_details_read_gitlab_shapes() -> None:
    client = GitLabClient("https://gitlab.example.org", "glpat-x")
    assert client.detail({"message": "404 Project Not Found"}) == ": 404 Project Not Found"
    assert client.detail({"error": "per_page is invalid"}) == ": per_page is invalid"
    assert "url: ['is blocked" in client.detail({"message": {"url": ["is blocked: x"]}})


def test_the_webhook_secret_is_masked_by_a_client_built_from_settings() -> None:
    s = config.load(environ={"DQUEUE_GITLAB_BASE_URL": "https://gitlab.example.org",
                             "DQUEUE_GITLAB_TOKEN": "glpat-tok-777", "DQUEUE_GITLAB_WEBHOOK_SECRET": "whs-888",
                             "DQUEUE_GITLAB_CONCURRENCY": "7"})
    with GitLabClient.from_settings(s.gitlab) as client:
        assert client.mask("a glpat-tok-777 b whs-888") == "a hidden b hidden"
        assert client.concurrency == 7 and client.session.get_adapter("https://x")._pool_maxsize == 7  # type: ignore[attr-defined]
        assert client.timeout == (s.gitlab.connect_timeout, s.gitlab.read_timeout)
