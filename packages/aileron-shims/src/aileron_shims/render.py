"""Text of ``tools.txt`` and of each shim, from a ``plan.Plan``.

A shim is a generated head (the tool's variables, help texts and subcommand table) followed by
``runtime.RUNTIME``. Every value that comes from a spec or manifest is embedded through
``sh_quote`` (single quotes, ``'`` spelled ``'\\''``) and every JSON fragment through
``json.dumps`` with ASCII escapes, so no input can change what the script does. Help lines
are printed with ``printf '%s\\n'``, never with ``echo`` or an unquoted here-document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aileron_shims.__about__ import __version__
from aileron_shims.model import Argument
from aileron_shims.names import one_line
from aileron_shims.plan import Plan, Subcommand, Tool
from aileron_shims.runtime import RUNTIME

ARGS_USAGE = "[--args JSON | --arg NAME=VALUE]..."


def sh_quote(text: str) -> str:
    """``text`` as one single-quoted ``sh`` word."""
    return "'" + text.replace("'", "'\\''") + "'"


def tools_txt(plan: Plan) -> str:
    """``<tool>\\t<fqn> -- <summary>`` lines: action-derived by name, then spec-derived."""
    lines = [
        f"{tool.name}\t{tool.fqn} -- {tool.summary}"
        for kind in ("action", "operation")
        for tool in sorted((t for t in plan.tools if t.kind == kind), key=lambda t: t.name)
    ]
    return "".join(f"{line}\n" for line in lines)


# --- help texts ----------------------------------------------------------------------------


def _argument_line(argument: Argument) -> str:
    need = "required" if argument.required else "optional"
    head = f"{argument.name} ({argument.type}, {need})"
    description = one_line(argument.description)
    return f"{head}: {description}" if description else head


def _argument_lines(inputs: tuple[Argument, ...], indent: str) -> list[str]:
    if not inputs:
        return [f"{indent}(no arguments)"]
    return [indent + _argument_line(argument) for argument in inputs]


def _placeholder(tool: Tool) -> str:
    return "ACTION" if tool.kind == "action" else "OPERATION"


def usage_lines(tool: Tool) -> list[str]:
    """The short usage printed on stderr with every usage error."""
    return [
        f"usage: {tool.name} {_placeholder(tool)} {ARGS_USAGE}",
        f"run '{tool.name} --help' for the {tool.kind}s and their arguments",
    ]


def tool_help(tool: Tool) -> list[str]:
    """``<tool> --help``: usage, what the tool is, each subcommand and its arguments."""
    word = _placeholder(tool)
    if tool.kind == "action":
        about = f"Aileron actions that use the connector {tool.fqn}"
    else:
        about = f"Operations of the Aileron connector {tool.fqn}"
    lines = [
        f"usage: {tool.name} {word} {ARGS_USAGE}",
        f"       {tool.name} {word} --help",
        f"       {tool.name} --help",
        "",
        f"{about}: {tool.connector_summary}" if tool.connector_summary else f"{about}.",
        "Each call goes through the Aileron daemon, which holds the credentials, may ask a"
        " human to approve, and records the call in its audit log.",
        "",
        f"{tool.kind}s:",
    ]
    for sub in tool.subcommands:
        lines.append(f"  {sub.name}  {sub.summary}" if sub.summary else f"  {sub.name}")
        lines.extend(_argument_lines(sub.inputs, "      "))
    lines += [
        "",
        "options:",
        '  --args JSON       all arguments as one JSON object, e.g. --args \'{"name": "value"}\'',
        "  --arg NAME=VALUE  one argument (repeat for more); a string value is taken as it is,",
        "                    a number, integer or boolean (true/false) must be valid JSON, an",
        "                    array or object is JSON text",
        "",
        "exit status: 0 done (the daemon's JSON answer is on stdout), 1 refused or failed,",
        "  64 usage error, 69 Aileron daemon or HTTP client unavailable, 75 waiting for a",
        "  human's approval",
    ]
    return lines


def subcommand_help(tool: Tool, sub: Subcommand) -> list[str]:
    """``<tool> <sub> --help``: usage, the description, the arguments."""
    lines = [f"usage: {tool.name} {sub.name} {ARGS_USAGE}", ""]
    if sub.description:
        lines += [*sub.description, ""]
    lines += ["arguments:", *_argument_lines(sub.inputs, "  "), ""]
    lines += [sub.runs, f"Run '{tool.name} --help' for the options and exit status."]
    return lines


# --- the script ----------------------------------------------------------------------------


def _printf(lines: Iterable[str], indent: str) -> list[str]:
    """A ``printf`` command printing ``lines``, one quoted word per line."""
    words = [sh_quote(line) for line in lines]
    out = [f"{indent}printf '%s\\n' \\"]
    out += [f"{indent}\t{word} \\" for word in words[:-1]]
    out.append(f"{indent}\t{words[-1]}")
    return out


def _function(name: str, body: list[str], indent: str) -> list[str]:
    return [f"{indent}{name}() {{", *body, f"{indent}}}"]


def _arg_spec(sub: Subcommand, indent: str) -> list[str]:
    if not sub.inputs:
        return _function("arg_spec", [f"{indent}\treturn 1"], indent)
    body = [f"{indent}\tcase $1 in"]
    for index, argument in enumerate(sub.inputs, start=1):
        key = sh_quote(json.dumps(argument.name))
        body.append(
            f"{indent}\t{sh_quote(argument.name)}) idx={index} key={key}"
            f" type={sh_quote(argument.type)} ;;"
        )
    body += [f"{indent}\t*) return 1 ;;", f"{indent}\tesac"]
    return _function("arg_spec", body, indent)


def _select_sub(tool: Tool) -> list[str]:
    body = ["\tcase $1 in"]
    for sub in tool.subcommands:
        arm = "\t\t"
        body.append(f"\t{sh_quote(sub.name)})")
        body.append(f"{arm}path={sh_quote(sub.path)}")
        body.append(f"{arm}prefix={sh_quote(sub.prefix)}")
        body += _function("help_sub", _printf(subcommand_help(tool, sub), arm + "\t"), arm)
        body += _arg_spec(sub, arm)
        body.append(f"{arm};;")
    body += ["\t*) return 1 ;;", "\tesac"]
    return _function("select_sub", body, "")


def shim(tool: Tool) -> str:
    """The whole ``sh`` script of one tool."""
    head = [
        "#!/bin/sh",
        f"# {tool.name}: Aileron connector shim for {tool.fqn}",
        f"# Generated by aileron-shims {__version__}; do not edit (aileron launch writes it anew).",
        f"# Run '{tool.name} --help'. Exit status: 0 done, 1 error, 64 usage, 69 unavailable,"
        " 75 pending approval.",
        "",
        f"tool={sh_quote(tool.name)}",
        f"kind={sh_quote(tool.kind)}",
        f"shim_version={sh_quote(__version__)}",
        "",
        *_function("usage", _printf(usage_lines(tool), "\t"), ""),
        "",
        *_function("help_tool", _printf(tool_help(tool), "\t"), ""),
        "",
        *_select_sub(tool),
    ]
    return "\n".join(head) + "\n" + RUNTIME
