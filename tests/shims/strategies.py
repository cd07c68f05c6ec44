"""Hypothesis strategies for shim inputs (imported as ``shims.strategies``).

Mostly valid names, with awkward but legal characters (quotes, ``$``, backticks, non-ASCII)
so the generated scripts are put to the test, and now and then an invalid one (empty, a
leading ``-``, white space, a control or bidi character, ``=``) so refusals are exercised too.
FQN segments are biased towards collisions and reserved names. Lists hold distinct names
(duplicates are refused, which other tests prove), so most examples generate tools.
"""

from __future__ import annotations

from hypothesis import strategies as st

from aileron_shims import Action, Argument, Connector, Operation

AGENTS = ("claude", "codex", "goose", "opencode")
GOOD_NAMES = [
    *("a", "b", "c", "say", "list", "get", "run", "echo-say", "x.y", "a_b", "n1", "help"),
    *("it's", 'q"t', "$(id)", "`id`", "a\\b", "é", "日本", "*", "[x]", "a;b", "a|b", "~"),
    *("%s", "{}", "#", "!x", "a'b'c", "AbC", "ZZ", "0", "9lives", "ok", "x-y-z", "p"),
]
BAD_NAMES = ["", "-x", "a b", "a\nb", "\u202eab", "k=v"]
ARGUMENT_TYPES = ["string", "number", "integer", "boolean", "array", "object"]
# Roughly one name in twenty is bad, one type in fifty.
NAMES = st.integers(0, 19).flatmap(lambda n: st.sampled_from(BAD_NAMES if n == 0 else GOOD_NAMES))
TYPES = st.integers(0, 49).flatmap(
    lambda n: st.just("x") if n == 0 else st.sampled_from(ARGUMENT_TYPES)
)
TEXT = st.one_of(
    st.sampled_from(["", "Say it.", 'It\'s "quoted" $HOME `id` \\n', "line one\n\nline two"]),
    st.text(max_size=30),
)
SEGMENTS = st.one_of(
    st.sampled_from(["echo", "Echo", "connector-echo", "aileron-connector-echo", "echo-2"]),
    st.sampled_from(["curl", "sh", "claude", "git", "-", "connector-", "a.b", "x_y", "ü"]),
    st.text(alphabet="ab-_.C", min_size=1, max_size=6),
    st.text(alphabet="ab-_.C/ \t", min_size=1, max_size=6),
)
FQNS = st.builds(
    lambda scheme, seg: scheme + seg, st.sampled_from(["local://", "x://y/"]), SEGMENTS
)
ARGUMENTS = st.lists(
    st.builds(Argument, NAMES, TYPES, st.booleans(), TEXT), max_size=3, unique_by=lambda a: a.name
).map(tuple)
OPERATIONS = st.lists(st.builds(Operation, NAMES, NAMES, TEXT, ARGUMENTS), max_size=3).map(tuple)
CONNECTORS = st.lists(
    st.builds(Connector, FQNS, TEXT, OPERATIONS), max_size=4, unique_by=lambda c: c.fqn
)


@st.composite
def inputs(draw: st.DrawFn) -> tuple[list[Connector], list[Action], str]:
    """Connectors, actions requiring some of them (or unknown FQNs), and an agent command."""
    connectors = draw(CONNECTORS)
    known = [c.fqn for c in connectors] or ["local://none"]
    fqns = st.lists(st.one_of(st.sampled_from(known), FQNS), max_size=2).map(tuple)
    actions = draw(
        st.lists(
            st.builds(Action, NAMES, TEXT, ARGUMENTS, fqns), max_size=4, unique_by=lambda a: a.name
        )
    )
    return connectors, actions, draw(st.sampled_from(AGENTS))


# --- inputs that always make tools (for tests that run the scripts) -----------------------

GOOD_ARGUMENTS = st.lists(
    st.builds(
        Argument, st.sampled_from(GOOD_NAMES), st.sampled_from(ARGUMENT_TYPES), st.booleans(), TEXT
    ),
    max_size=3,
    unique_by=lambda a: a.name,
).map(tuple)
GOOD_OPERATIONS = st.lists(
    st.builds(
        Operation, st.sampled_from(GOOD_NAMES), st.sampled_from(GOOD_NAMES), TEXT, GOOD_ARGUMENTS
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda o: f"{o.tool}.{o.name}",
).map(tuple)
GOOD_FQNS = st.builds(
    lambda scheme, seg: scheme + seg,
    st.sampled_from(["local://", "github://o/r/"]),
    st.one_of(
        st.sampled_from(["echo", "connector-echo", "Echo", "x_y", "ü-tool", "a.b"]),
        st.text(alphabet="abc-_.", min_size=1, max_size=6).filter(
            lambda s: any(c in "abc" for c in s)
        ),
    ),
)


@st.composite
def rich_inputs(draw: st.DrawFn) -> tuple[list[Connector], list[Action], str]:
    """Valid connectors (each with operations) and actions requiring some of them."""
    connectors = draw(
        st.lists(
            st.builds(Connector, GOOD_FQNS, TEXT, GOOD_OPERATIONS),
            min_size=1,
            max_size=3,
            unique_by=lambda c: c.fqn,
        )
    )
    known = st.sampled_from([c.fqn for c in connectors])
    action = st.builds(
        Action,
        st.sampled_from([n for n in GOOD_NAMES if n != "help"]),
        TEXT,
        GOOD_ARGUMENTS,
        st.lists(known, min_size=1, max_size=2).map(tuple),
    )
    actions = draw(st.lists(action, max_size=3, unique_by=lambda a: a.name))
    return connectors, actions, "claude"
