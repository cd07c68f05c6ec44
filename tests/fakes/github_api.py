"""A fake GitHub REST API: enough of api.github.com for the catalog's GitHub connector.

``GitHubApi`` is a handler for ``tls_upstreams.TlsUpstream`` (so it is served over real TLS
with a private CA's certificate for ``api.github.com``). It keeps repositories in memory and
answers like GitHub does:

- every request needs ``Authorization: Bearer <token>`` with the one token it was given
  (``401 {"message": "Bad credentials"}`` otherwise); every token it was sent is kept in
  ``tokens``;
- ``GET/POST /repos/{o}/{r}/issues``, ``POST /repos/{o}/{r}/issues/{n}/comments``,
  ``GET/POST /repos/{o}/{r}/pulls``, ``PUT /repos/{o}/{r}/pulls/{n}/merge``,
  ``GET /repos/{o}/{r}/contents/{path}`` (the path may arrive with ``/`` encoded as ``%2F``,
  as clients that encode the whole parameter send it) and ``GET /repos/{o}/{r}/actions/runs``;
- errors are GitHub's JSON: ``{"message", "documentation_url", "status"}`` with 404 for an
  unknown repository or number, 422 ``Validation Failed`` for a missing field, 405 for merging a
  pull request that is not open.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fakes.tls_upstreams import Request, Response, bearer_token

DOCS = "https://docs.github.com/rest"


def _json(status: int, value: object) -> Response:
    body = json.dumps(value).encode()
    return Response(status, [("Content-Type", "application/json; charset=utf-8")], body)


def _error(status: int, message: str, **extra: Any) -> Response:
    return _json(
        status, {"message": message, "documentation_url": DOCS, "status": str(status), **extra}
    )


@dataclass
class Repository:
    """One repository's issues, pull requests, files and workflow runs."""

    owner: str
    name: str
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def url(self, *parts: object) -> str:
        return "/".join([f"https://github.com/{self.owner}/{self.name}", *map(str, parts)])


@dataclass
class GitHubApi:
    """The fake API (see the module); ``repository`` adds a repository to serve."""

    token: str
    tokens: list[str] = field(default_factory=list)
    """Every Bearer token a request carried, right or wrong."""
    repositories: dict[tuple[str, str], Repository] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def repository(self, owner: str, name: str) -> Repository:
        """A new, empty repository ``owner/name``."""
        repo = Repository(owner, name)
        self.repositories[(owner, name)] = repo
        return repo

    def add_issue(
        self, repo: Repository, title: str, *, pull: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """An open issue (or, with ``pull`` = {head, base}, a pull request) numbered next."""
        number = len(repo.issues) + 1
        item: dict[str, Any] = {
            "number": number,
            "title": title,
            "body": None,
            "state": "open",
            "labels": [],
            "html_url": repo.url("pull" if pull else "issues", number),
        }
        if pull is not None:
            item["head"] = {"ref": pull["head"]}
            item["base"] = {"ref": pull["base"]}
            item["merged"] = False
            item["pull_request"] = {"html_url": item["html_url"]}
        repo.issues.append(item)
        return item

    def __call__(self, request: Request) -> Response:
        given = bearer_token(request.header("Authorization"))
        if given is not None:
            with self._lock:
                self.tokens.append(given)
        if given != self.token:
            return _error(401, "Bad credentials")
        with self._lock:
            return self._route(request)

    def _route(self, request: Request) -> Response:
        url = urlsplit(request.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        parts = url.path.split("/")
        if len(parts) < 5 or parts[:2] != ["", "repos"]:
            return _error(404, "Not Found")
        repo = self.repositories.get((unquote(parts[2]), unquote(parts[3])))
        if repo is None:
            return _error(404, "Not Found")
        rest, method = parts[4:], request.method
        body = json.loads(request.body) if request.body else {}
        if rest == ["issues"]:
            return self._issues(repo, method, query, body)
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "comments" and method == "POST":
            return self._comment(repo, rest[1], body)
        if rest == ["pulls"]:
            return self._pulls(repo, method, query, body)
        if len(rest) == 3 and rest[0] == "pulls" and rest[2] == "merge" and method == "PUT":
            return self._merge(repo, rest[1], body)
        if rest[0] == "contents" and len(rest) >= 2 and method == "GET":
            return self._contents(repo, unquote("/".join(rest[1:])))
        if rest == ["actions", "runs"] and method == "GET":
            runs = [
                run
                for run in repo.runs
                if all(run.get(k) == v for k, v in query.items() if k in ("status", "event"))
                and query.get("branch", run["head_branch"]) == run["head_branch"]
            ]
            return _json(200, {"total_count": len(runs), "workflow_runs": runs})
        return _error(404, "Not Found")

    def _issues(
        self, repo: Repository, method: str, query: dict[str, str], body: dict[str, Any]
    ) -> Response:
        if method == "GET":
            state = query.get("state", "open")
            return _json(200, [item for item in repo.issues if state in ("all", item["state"])])
        if method != "POST":
            return _error(404, "Not Found")
        if not body.get("title"):
            return _error(
                422,
                "Validation Failed",
                errors=[{"resource": "Issue", "field": "title", "code": "missing_field"}],
            )
        item = self.add_issue(repo, body["title"])
        item["body"] = body.get("body")
        item["labels"] = [{"name": name} for name in body.get("labels") or []]
        return _json(201, item)

    def _find(self, repo: Repository, number: str) -> dict[str, Any] | None:
        return next((item for item in repo.issues if str(item["number"]) == number), None)

    def _comment(self, repo: Repository, number: str, body: dict[str, Any]) -> Response:
        if self._find(repo, number) is None:
            return _error(404, "Not Found")
        if not body.get("body"):
            return _error(
                422,
                "Validation Failed",
                errors=[{"resource": "IssueComment", "field": "body", "code": "missing_field"}],
            )
        comment = {"id": 1000 + len(repo.comments), "issue": int(number), "body": body["body"]}
        comment["html_url"] = repo.url("issues", number) + f"#issuecomment-{comment['id']}"
        repo.comments.append(comment)
        return _json(201, comment)

    def _pulls(
        self, repo: Repository, method: str, query: dict[str, str], body: dict[str, Any]
    ) -> Response:
        pulls = [item for item in repo.issues if "pull_request" in item]
        if method == "GET":
            state = query.get("state", "open")
            return _json(200, [item for item in pulls if state in ("all", item["state"])])
        missing = [name for name in ("title", "head", "base") if not body.get(name)]
        if method != "POST" or missing:
            return _error(
                422,
                "Validation Failed",
                errors=[
                    {"resource": "PullRequest", "field": name, "code": "missing_field"}
                    for name in missing
                ],
            )
        item = self.add_issue(
            repo, body["title"], pull={"head": body["head"], "base": body["base"]}
        )
        item["body"] = body.get("body")
        item["draft"] = bool(body.get("draft"))
        return _json(201, item)

    def _merge(self, repo: Repository, number: str, body: dict[str, Any]) -> Response:
        item = self._find(repo, number)
        if item is None or "pull_request" not in item:
            return _error(404, "Not Found")
        if item["state"] != "open":
            return _error(405, "Pull Request is not mergeable")
        item["state"], item["merged"] = "closed", True
        sha = f"{int(number):040x}"
        return _json(
            200,
            {
                "sha": sha,
                "merged": True,
                "message": "Pull Request successfully merged",
                "merge_method": body.get("merge_method", "merge"),
            },
        )

    def _contents(self, repo: Repository, path: str) -> Response:
        if path in repo.files:
            data = repo.files[path]
            return _json(
                200,
                {
                    "type": "file",
                    "encoding": "base64",
                    "size": len(data),
                    "name": path.rsplit("/", 1)[-1],
                    "path": path,
                    "content": base64.b64encode(data).decode(),
                },
            )
        inside = sorted(name for name in repo.files if name.startswith(path.rstrip("/") + "/"))
        if not inside:
            return _error(404, "Not Found")
        return _json(
            200,
            [{"type": "file", "name": name.rsplit("/", 1)[-1], "path": name} for name in inside],
        )
