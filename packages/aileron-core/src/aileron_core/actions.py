"""Action manifests (``<name>.md``): the model, the strict parser, and fitting to connectors.

An action is a Markdown file whose first line is ``+++``; TOML front matter runs to the next
``+++`` line, and the Markdown after it (surrounding white space stripped, never empty) is the
tool description an agent sees::

    +++
    name = "echo-say"
    version = "1.0.0"

    [[inputs]]
    name = "message"
    type = "string"            # string | number | integer | boolean | array | object
    required = true            # the default
    description = "What to say."

    [[requires.connectors]]
    fqn = "local://echo"
    version = "1.0.0"
    binding = "token/echo/demo"   # optional: a binding other than */<service>/default

    [[execute]]
    id = "say"
    connector = "local://echo"
    tool = "echo"
    op = "say"
    args = { message = "${args.message}" }

    [approval]
    required = false           # the default
    +++
    Say something through the local echo connector.

Rules beyond plain types (each broken rule is a ``ManifestError`` naming the key, such as
``execute[1].args.title``, or for TOML syntax the line):

- ``name`` is kebab-case (``ACTION_NAME_PATTERN``, at most 64 characters); ``version`` follows
  the connector version grammar. Input names and step ids match ``INPUT_NAME_PATTERN`` (they
  are what ``${args.<input>}`` and ``${<step>.<field>}`` refer to) and are unique; ``args`` is
  not a step id.
- Each ``[[requires.connectors]]`` entry names a connector (FQN grammar of
  ``aileron_core.connectors``) once, with the exact version the action was written against,
  and is used by at least one step. Its optional ``binding`` (``<kind>/<service>/<identity>``)
  overrides the default binding ``*/<service>/default`` for that connector.
- ``[[execute]]`` is non-empty; every step's ``connector`` is listed in ``requires``. Step
  ``args`` keys are connector input names; values are any JSON-compatible TOML value (no dates,
  no NaN/infinity), and every string in them may hold ``${…}`` placeholders, optionally with
  an explicit cast such as ``${one.id | string}`` (``aileron_core.templating``). A
  placeholder must refer to ``args`` (the action's arguments; ``args.<input>`` must be
  declared, and only array and object inputs have fields) or to an earlier step. The last
  step's result is the action's result.
- Whether the steps fit the installed connectors (operations exist, argument names, versions,
  binding services) needs the specs, so it is ``check_requirements``'s job, not the parser's.

``render_step_args`` fills a step's placeholders in when the action runs. A call's arguments
are checked against the declared inputs by ``aileron_core.arguments``.

Errors::

    AileronError
    └── ManifestError   invalid_action_manifest   details {"source", "line"?, "key"?, "problem"}
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, cast

import attrs

from aileron_core.connectors import (
    FQN_PATTERN,
    FQN_RULE,
    INPUT_TYPES,
    NAME_PATTERN,
    NAME_RULE,
    VERSION_PATTERN,
    VERSION_RULE,
    ConnectorSpec,
    InputType,
    Operation,
)
from aileron_core.errors import AileronError
from aileron_core.strict import (
    LONE_SURROGATE,
    MAX_JSON_DEPTH,
    TEXT_CONTROL_CHARS,
    Location,
    StrictReader,
    format_location,
)
from aileron_core.templating import (
    CAST_TYPES,
    ROOT_PATTERN,
    Reference,
    TemplateError,
    format_reference,
    references,
    render,
    single_placeholder,
)

MAX_MANIFEST_BYTES = 256 * 1024
"""Largest manifest the parser reads."""

ACTION_NAME_PATTERN = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
INPUT_NAME_PATTERN = ROOT_PATTERN
BINDING_PATTERN = rf"{NAME_PATTERN}/{NAME_PATTERN}/{NAME_PATTERN}"
MAX_NAME_CHARS = 64

_ACTION_NAME = re.compile(ACTION_NAME_PATTERN)
_INPUT_NAME = re.compile(INPUT_NAME_PATTERN)
_BINDING = re.compile(BINDING_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)
_FQN = re.compile(FQN_PATTERN)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

ACTION_NAME_RULE = "use kebab-case: lowercase letters and digits in '-'-separated words"
INPUT_NAME_RULE = "use letters, digits, '_' and '-', starting with a letter or '_'"
BINDING_RULE = "write <kind>/<service>/<identity>, e.g. token/github/work"


class ManifestError(AileronError):
    """An action manifest cannot be read or breaks a rule."""

    code = "invalid_action_manifest"


# --- the model -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ActionInput:
    """One argument the action takes."""

    name: str
    type: InputType
    required: bool = True
    description: str = ""


@attrs.frozen(kw_only=True)
class ConnectorRequirement:
    """A connector the action uses, and the binding to use instead of the default one."""

    fqn: str
    version: str
    binding: str | None = None


@attrs.frozen(kw_only=True)
class Requirements:
    """The ``[requires]`` table."""

    connectors: tuple[ConnectorRequirement, ...]


@attrs.frozen(kw_only=True)
class Step:
    """One connector operation the action runs; ``args`` may hold ``${…}`` placeholders."""

    id: str
    connector: str
    tool: str
    op: str
    args: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ActionApproval:
    """The ``[approval]`` table."""

    required: bool = False


@attrs.frozen(kw_only=True)
class ActionManifest:
    """A parsed and validated action manifest."""

    name: str
    version: str
    description: str
    requires: Requirements
    execute: tuple[Step, ...]
    inputs: tuple[ActionInput, ...] = ()
    approval: ActionApproval = ActionApproval()

    @property
    def approval_required(self) -> bool:
        """Whether the action itself waits for a human's approval before it runs."""
        return self.approval.required

    def find_input(self, name: str) -> ActionInput | None:
        """The input called ``name``, or ``None``."""
        return next((item for item in self.inputs if item.name == name), None)

    def requirement(self, fqn: str) -> ConnectorRequirement | None:
        """The ``[[requires.connectors]]`` entry for ``fqn``, or ``None``."""
        return next((req for req in self.requires.connectors if req.fqn == fqn), None)


# --- the parser ----------------------------------------------------------------------------


def _key(at: Location) -> str:
    return format_location(at, root="")


class _ManifestParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.reader = StrictReader(self.fail, locate=_key)

    def fail(self, at: Location, problem: str) -> NoReturn:
        key = _key(at)
        details: dict[str, Any] = {"source": self.source, "problem": problem}
        if key:
            details["key"] = key
        where = f"{self.source}: {key}" if key else self.source
        raise ManifestError(f"{where}: {problem}", details=details)

    def fail_line(self, line: int | None, problem: str) -> NoReturn:
        details: dict[str, Any] = {"source": self.source, "problem": problem}
        if line is not None:
            details["line"] = line
        where = f"{self.source}:{line}" if line is not None else self.source
        raise ManifestError(f"{where}: {problem}", details=details)

    def decode(self, data: object) -> str:
        if isinstance(data, bytes | bytearray):
            if len(data) > MAX_MANIFEST_BYTES:
                self.fail_line(None, f"is larger than {MAX_MANIFEST_BYTES} bytes")
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                self.fail_line(None, f"is not UTF-8 text (bad byte at offset {exc.start})")
        elif isinstance(data, str):
            if len(data) > MAX_MANIFEST_BYTES:
                self.fail_line(None, f"is larger than {MAX_MANIFEST_BYTES} characters")
            text = data
        else:
            self.fail_line(None, f"must be text (str or bytes), not {type(data).__name__}")
        if LONE_SURROGATE.search(text):
            self.fail_line(None, "is not valid Unicode text (it holds a lone surrogate)")
        return text.removeprefix("\ufeff").replace("\r\n", "\n")

    def split(self, text: str) -> tuple[str, str, int]:
        """Front matter, body, and the 1-based line number of the closing ``+++``."""
        lines = text.split("\n")
        if lines[0] != "+++":
            self.fail_line(
                1, "a manifest starts with a '+++' line, then TOML front matter and '+++'"
            )
        for index in range(1, len(lines)):
            if lines[index] == "+++":
                return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :]), index + 1
        self.fail_line(len(lines), "the front matter has no closing '+++' line")

    def load_toml(self, front: str, closing_line: int) -> dict[str, Any]:
        try:
            return tomllib.loads(front)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            position = _TOML_POSITION.search(message)
            if position:
                problem = f"{message[: position.start()]} (column {position.group(2)})"
                self.fail_line(int(position.group(1)) + 1, f"invalid TOML: {problem}")
            problem = message.replace("(at end of document)", "").strip()
            self.fail_line(closing_line - 1, f"invalid TOML: {problem} (at the end)")
        except RecursionError:
            self.fail_line(None, "invalid TOML: values are nested too deeply")

    def parse(self, data: object) -> ActionManifest:
        front, body, closing_line = self.split(self.decode(data))
        document = self.load_toml(front, closing_line)
        description = body.strip()
        if not description:
            self.fail_line(
                closing_line + 1,
                "the Markdown body after the front matter is empty; it is the tool description",
            )
        bad = TEXT_CONTROL_CHARS.search(description)
        if bad:
            offset = len(body) - len(body.lstrip()) + bad.start()
            self.fail_line(
                closing_line + 1 + body[:offset].count("\n"),
                "the Markdown body must not contain control characters other than newline and tab",
            )
        try:
            return self.front_matter(document, description)
        except RecursionError:
            self.fail_line(None, "values are nested too deeply")

    def front_matter(self, document: Any, description: str) -> ActionManifest:
        r = self.reader
        root = r.table(
            document,
            (),
            required=("name", "version", "requires", "execute"),
            optional=("inputs", "approval"),
        )
        name = r.matching(root["name"], ("name",), _ACTION_NAME, ACTION_NAME_RULE)
        if len(name) > MAX_NAME_CHARS:
            self.fail(("name",), f"must be at most {MAX_NAME_CHARS} characters")
        version = r.matching(root["version"], ("version",), _VERSION, VERSION_RULE)
        inputs = tuple(
            self.input(item, ("inputs", index))
            for index, item in enumerate(
                r.array(root.get("inputs", []), ("inputs",), non_empty=False)
            )
        )
        r.unique(((item.name, ("inputs", i, "name")) for i, item in enumerate(inputs)), "input")
        requires = self.requires(root["requires"], ("requires",))
        steps_at: Location = ("execute",)
        raw_steps = r.array(root["execute"], steps_at)
        # Ids first, so a reference to a later step is reported as such, not as unknown.
        ids = [self.step_id(item, (*steps_at, index)) for index, item in enumerate(raw_steps)]
        r.unique(((step_id, (*steps_at, i, "id")) for i, step_id in enumerate(ids)), "step id")
        steps = tuple(
            self.step(item, (*steps_at, index), inputs, requires, ids[:index], ids)
            for index, item in enumerate(raw_steps)
        )
        used = {step.connector for step in steps}
        for index, req in enumerate(requires.connectors):
            if req.fqn not in used:
                self.fail(
                    ("requires", "connectors", index, "fqn"),
                    f"no step uses {req.fqn}; remove the requirement",
                )
        approval = ActionApproval()
        if "approval" in root:
            table = r.table(root["approval"], ("approval",), required=(), optional=("required",))
            if "required" in table:
                approval = ActionApproval(
                    required=r.boolean(table["required"], ("approval", "required"))
                )
        return ActionManifest(
            name=name,
            version=version,
            description=description,
            inputs=inputs,
            requires=requires,
            execute=steps,
            approval=approval,
        )

    def input(self, value: Any, at: Location) -> ActionInput:
        r = self.reader
        table = r.table(value, at, required=("name", "type"), optional=("required", "description"))
        name = r.matching(table["name"], (*at, "name"), _INPUT_NAME, INPUT_NAME_RULE)
        if len(name) > MAX_NAME_CHARS:
            self.fail((*at, "name"), f"must be at most {MAX_NAME_CHARS} characters")
        return ActionInput(
            name=name,
            type=cast(InputType, r.choice(table["type"], (*at, "type"), INPUT_TYPES)),
            required=(
                r.boolean(table["required"], (*at, "required")) if "required" in table else True
            ),
            description=(
                r.text(table["description"], (*at, "description"), allow_empty=True)
                if "description" in table
                else ""
            ),
        )

    def requires(self, value: Any, at: Location) -> Requirements:
        r = self.reader
        table = r.table(value, at, required=("connectors",))
        list_at = (*at, "connectors")
        entries: list[ConnectorRequirement] = []
        for index, item in enumerate(r.array(table["connectors"], list_at)):
            item_at = (*list_at, index)
            entry = r.table(item, item_at, required=("fqn", "version"), optional=("binding",))
            entries.append(
                ConnectorRequirement(
                    fqn=r.matching(entry["fqn"], (*item_at, "fqn"), _FQN, FQN_RULE),
                    version=r.matching(
                        entry["version"], (*item_at, "version"), _VERSION, VERSION_RULE
                    ),
                    binding=(
                        r.matching(entry["binding"], (*item_at, "binding"), _BINDING, BINDING_RULE)
                        if "binding" in entry
                        else None
                    ),
                )
            )
        r.unique(((req.fqn, (*list_at, i, "fqn")) for i, req in enumerate(entries)), "connector")
        return Requirements(connectors=tuple(entries))

    def step_id(self, value: Any, at: Location) -> str:
        table = self.reader.table(
            value, at, required=("id", "connector", "tool", "op"), optional=("args",)
        )
        step_id = self.reader.matching(table["id"], (*at, "id"), _INPUT_NAME, INPUT_NAME_RULE)
        if step_id == "args":
            self.fail((*at, "id"), "'args' is reserved for the action's arguments; pick another")
        if len(step_id) > MAX_NAME_CHARS:
            self.fail((*at, "id"), f"must be at most {MAX_NAME_CHARS} characters")
        return step_id

    def step(
        self,
        value: dict[str, Any],
        at: Location,
        inputs: Sequence[ActionInput],
        requires: Requirements,
        earlier: Sequence[str],
        ids: Sequence[str],
    ) -> Step:
        r = self.reader
        connector = r.matching(value["connector"], (*at, "connector"), _FQN, FQN_RULE)
        listed = [req.fqn for req in requires.connectors]
        if connector not in listed:
            self.fail(
                (*at, "connector"),
                f"{connector} is not listed in [[requires.connectors]] ({', '.join(listed)})",
            )
        args_at = (*at, "args")
        args = r.mapping(value.get("args", {}), args_at)
        for key, item in args.items():
            r.matching(key, (*args_at, key), _NAME, f"an argument name must be a name: {NAME_RULE}")
            self.json_value(item, (*args_at, key), 0)
            self.check_references(item, (*args_at, key), inputs, earlier, ids)
        return Step(
            id=ids[len(earlier)],
            connector=connector,
            tool=r.matching(value["tool"], (*at, "tool"), _NAME, NAME_RULE),
            op=r.matching(value["op"], (*at, "op"), _NAME, NAME_RULE),
            args=args,
        )

    def json_value(self, value: Any, at: Location, depth: int) -> None:
        """Fail unless ``value`` is JSON data (TOML also has dates and non-finite floats)."""
        if depth > MAX_JSON_DEPTH:
            self.fail(at, f"is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, str):
            self.reader.string(value, at)
        elif isinstance(value, float) and not math.isfinite(value):
            self.fail(at, "must be a finite number (JSON has no NaN or infinity)")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.json_value(item, (*at, index), depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.json_value(item, (*at, key), depth + 1)
        elif not isinstance(value, bool | int | float):
            self.fail(at, f"must be JSON data, not {self.reader.describe(value)}; quote it")

    def check_references(
        self,
        value: Any,
        at: Location,
        inputs: Sequence[ActionInput],
        earlier: Sequence[str],
        ids: Sequence[str],
    ) -> None:
        try:
            found = references(value)
        except TemplateError as exc:
            self.fail(at, str(exc.details["problem"]))
        declared = {item.name: item for item in inputs}
        for reference in found:
            self.check_reference(reference, at, declared, earlier, ids)

    def check_reference(
        self,
        reference: Reference,
        at: Location,
        declared: Mapping[str, ActionInput],
        earlier: Sequence[str],
        ids: Sequence[str],
    ) -> None:
        spelled = format_reference(reference)
        root, *fields = reference
        if root == "args":
            if not fields:
                return
            item = declared.get(fields[0])
            if item is None:
                known = ", ".join(declared) or "none"
                self.fail(at, f"{spelled} names no declared input (declared: {known})")
            if len(fields) > 1 and item.type not in ("array", "object"):
                self.fail(at, f"{spelled}: input {item.name!r} is a {item.type}; it has no fields")
        elif root in earlier:
            return
        elif root in ids:
            self.fail(at, f"{spelled} refers to step {root!r}, which has not run yet at this step")
        else:
            self.fail(at, f"{spelled}: {root!r} is neither 'args' nor the id of an earlier step")


def parse_action_manifest(text: str | bytes, *, source: str = "<manifest>") -> ActionManifest:
    """Parse and validate an action manifest; ``ManifestError`` names any problem.

    ``source`` (usually the file name) starts every error message. Nothing but
    ``ManifestError`` is raised, whatever the input.
    """
    return _ManifestParser(source).parse(text)


# --- fitting a manifest to installed connectors --------------------------------------------

_COMPATIBLE: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "integer": frozenset({"integer"}),
    "number": frozenset({"number", "integer"}),
    "boolean": frozenset({"boolean"}),
    "array": frozenset({"array"}),
    "object": frozenset({"object"}),
}


def check_requirements(
    manifest: ActionManifest,
    specs: Mapping[str, ConnectorSpec],
    *,
    source: str = "<manifest>",
) -> None:
    """Check that ``manifest`` fits the connector specs it requires (keyed by FQN).

    Every required connector is present in the required version; a ``binding`` override is for
    the connector's credential service; every step names an existing tool and operation, passes
    only that operation's inputs and all its required ones, and every argument whose type is
    known before running (a constant, plain text, or a whole ``${args.x}``) has a compatible
    type. Raises ``ManifestError`` naming the key.
    """
    parser = _ManifestParser(source)
    for index, req in enumerate(manifest.requires.connectors):
        at: Location = ("requires", "connectors", index)
        spec = specs.get(req.fqn)
        if spec is None:
            parser.fail((*at, "fqn"), f"connector {req.fqn} is not installed")
        if spec.version != req.version:
            parser.fail(
                (*at, "version"),
                f"the action needs {req.fqn} {req.version}, but {spec.version} is installed",
            )
        if req.binding is not None and req.binding.split("/")[1] != spec.credential.service:
            parser.fail(
                (*at, "binding"),
                f"{req.binding} is not for service {spec.credential.service!r},"
                f" which {req.fqn} authenticates with",
            )
    for index, step in enumerate(manifest.execute):
        at = ("execute", index)
        spec = specs[step.connector]
        tool = spec.find_tool(step.tool)
        if tool is None:
            offered = ", ".join(t.name for t in spec.tools)
            parser.fail((*at, "tool"), f"{spec.fqn} has no tool {step.tool!r} ({offered})")
        operation = tool.find_operation(step.op)
        if operation is None:
            offered = ", ".join(o.name for o in tool.operations)
            parser.fail((*at, "op"), f"tool {tool.name!r} has no operation {step.op!r} ({offered})")
        _check_step_args(parser, manifest, step, operation, (*at, "args"))


def _check_step_args(
    parser: _ManifestParser,
    manifest: ActionManifest,
    step: Step,
    operation: Operation,
    at: Location,
) -> None:
    known = ", ".join(item.name for item in operation.inputs) or "none"
    for name, value in step.args.items():
        item = operation.find_input(name)
        if item is None:
            parser.fail(
                (*at, name), f"operation {operation.name!r} has no input {name!r} ({known})"
            )
        kind = _static_type(manifest, value)
        if kind is not None and kind not in _COMPATIBLE[item.type]:
            parser.fail((*at, name), f"is {kind}, but input {name!r} takes {item.type}")
    for item in operation.inputs:
        if item.required and item.name not in step.args:
            parser.fail((*at, item.name), f"operation {operation.name!r} requires this input")


def _static_type(manifest: ActionManifest, value: Any) -> str | None:
    """The input type ``value`` will have after rendering, when it is known before running."""
    if isinstance(value, str):
        placeholder = single_placeholder(value)
        if placeholder is None:
            return "string"
        if placeholder.cast is not None:
            return CAST_TYPES[placeholder.cast]
        reference = placeholder.reference
        if reference[0] == "args" and len(reference) == 2:
            item = manifest.find_input(reference[1])
            return item.type if item else None
        return None
    return _json_type(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def render_step_args(
    manifest: ActionManifest,
    step: Step,
    args: Mapping[str, Any],
    results: Mapping[str, Any],
) -> dict[str, Any]:
    """``step.args`` rendered against validated ``args`` and earlier steps' ``results`` (by id).

    An optional input left out renders as null; a step argument that renders to null as a
    whole is left out of the result, so an omitted optional input is not sent at all. A
    ``TemplateError`` (a reference to nothing, a cast that cannot be done) names the step and
    the input it was rendering, in its message and in ``details`` (``step``, ``input``).
    """
    context: dict[str, Any] = dict(results)
    context["args"] = {item.name: args.get(item.name) for item in manifest.inputs}
    rendered: dict[str, Any] = {}
    for key, template in step.args.items():
        try:
            value = render(template, context)
        except TemplateError as error:
            raise TemplateError(
                f"step {step.id!r}, input {key!r}: {error.message}",
                hint=error.hint,
                details={**error.details, "step": step.id, "input": key},
            ) from None
        if value is not None:
            rendered[key] = value
    return rendered
