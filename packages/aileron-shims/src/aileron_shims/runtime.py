"""The part of every shim that does not depend on its tool: arguments, encoding, HTTP.

``RUNTIME`` is POSIX ``sh`` (no bashisms; checked with ``sh -n`` and ``dash -n`` by the
tests). It expects the generated part above it to define ``tool``, ``kind``,
``shim_version`` and the functions ``usage``, ``help_tool`` and ``select_sub`` (which, for a
known subcommand, sets ``path`` and ``prefix`` and defines ``help_sub`` and ``arg_spec``).

What it does, in order:

1. ``<tool> --help | -h | help`` prints the tool's help (exit 0); no subcommand, an unknown
   subcommand or option → usage on stderr, exit 64.
2. ``<tool> SUB [--args JSON | --arg NAME=VALUE …]``: ``--args`` is taken verbatim (the
   daemon validates it); each ``--arg`` must name a declared input once, and its value is
   encoded by the input's type: ``string`` → a JSON string (awk escapes ``\\``, ``"`` and
   control characters), ``integer``/``number``/``boolean`` → checked with ``case`` patterns
   and sent as is, ``array``/``object`` → sent as is. A bad value, an undeclared name, or
   ``--args`` with ``--arg`` → exit 64.
3. ``AILERON_API_URL`` (an ``http(s)://…/v1`` URL) and ``AILERON_TOKEN`` must be set, and
   ``curl`` or else GNU ``wget`` must be on ``PATH``; otherwise exit 69.
4. POST ``$AILERON_API_URL$path`` with the body ``$prefix{…}}``. The headers go through a
   0600 file in a private temporary directory (curl ``-H @file``, wget ``--config``), so the
   token is never on a command line. 200 → the body on stdout, exit 0; 202 → the body on
   stdout and the approval hint on stderr, exit 75; any other status → ``<tool>: error (HTTP
   <code>): <body>`` on stderr, exit 1; no answer → ``<tool>: Aileron daemon unreachable at
   <url>``, exit 69. A temporary directory that cannot be made → exit 73.
"""

from __future__ import annotations

UTILITIES: tuple[str, ...] = ("awk", "cat", "mktemp", "rm")
"""What a shim runs besides its shell's built-ins, and one of ``HTTP_CLIENTS``."""
HTTP_CLIENTS: tuple[str, ...] = ("curl", "wget")
"""The HTTP clients a shim uses, in order of preference (wget must be GNU wget)."""
CONNECT_TIMEOUT_S = 10
"""Seconds a shim waits to reach the daemon (and, with wget, to resolve its name)."""
MAX_TIME_S = 600
"""Seconds a shim waits for the daemon's answer (upstream calls have their own timeouts)."""

RUNTIME = r"""
set -u

nl='
'
cr=$(printf '\r')

fail() {
	status=$1
	shift
	printf '%s: %s\n' "$tool" "$*" >&2
	exit "$status"
}

usage_error() {
	printf '%s: %s\n' "$tool" "$1" >&2
	usage >&2
	exit 64
}

is_digits() {
	case $1 in
	'' | *[!0123456789]*) return 1 ;;
	esac
	return 0
}

# A JSON integer without its sign: digits, no leading zero.
is_uint() {
	is_digits "$1" || return 1
	case $1 in
	0?*) return 1 ;;
	esac
	return 0
}

is_integer() {
	is_uint "${1#-}"
}

# A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
is_number() {
	n=${1#-}
	int=${n%%[.eE]*}
	rest=${n#"$int"}
	is_uint "$int" || return 1
	case $rest in
	.*)
		frac=${rest#.}
		frac=${frac%%[eE]*}
		is_digits "$frac" || return 1
		rest=${rest#."$frac"}
		;;
	esac
	case $rest in
	'') return 0 ;;
	[eE]*)
		rest=${rest#?}
		rest=${rest#[+-]}
		is_digits "$rest"
		return
		;;
	esac
	return 1
}

# $1 as a JSON string. The value reaches awk on stdin with a trailing '.', so trailing
# newlines survive; awk runs byte by byte (LC_ALL=C) and escapes \, " and control characters.
json_string() {
	printf '%s.' "$1" | LC_ALL=C awk '
	function put(s,  i, n, c) {
		n = length(s)
		for (i = 1; i <= n; i++) {
			c = substr(s, i, 1)
			if (c in e) printf "%s", e[c]
			else printf "%s", c
		}
	}
	BEGIN {
		for (i = 1; i < 32; i++) e[sprintf("%c", i)] = sprintf("\\u%04x", i)
		e["\""] = "\\\""
		e["\\"] = "\\\\"
		e["\n"] = "\\n"
		e["\r"] = "\\r"
		e["\t"] = "\\t"
		printf "\""
	}
	{
		if (NR > 1) {
			put(last)
			printf "\\n"
		}
		last = $0
	}
	END {
		put(substr(last, 1, length(last) - 1))
		printf "\""
	}'
}

set_args() {
	[ "$mode" != arg ] || usage_error "use either --args or --arg, not both"
	[ "$mode" != args ] || usage_error "give --args once"
	mode=args
	args_json=$1
}

add_arg() {
	[ "$mode" != args ] || usage_error "use either --args or --arg, not both"
	mode=arg
	case $1 in
	*=*) ;;
	*) usage_error "--arg takes NAME=VALUE, not '$1'" ;;
	esac
	name=${1%%=*}
	value=${1#*=}
	arg_spec "$name" || usage_error "$sub has no argument '$name' (run '$tool $sub --help')"
	case $seen in
	*" $idx "*) usage_error "argument '$name' is given twice" ;;
	esac
	seen="$seen$idx "
	case $type in
	string)
		value=$(json_string "$value") || fail 69 "awk failed to encode argument '$name'"
		;;
	integer)
		is_integer "$value" || usage_error "argument '$name' must be an integer, not '$value'"
		;;
	number)
		is_number "$value" || usage_error "argument '$name' must be a JSON number, not '$value'"
		;;
	boolean)
		case $value in
		true | false) ;;
		*) usage_error "argument '$name' must be true or false, not '$value'" ;;
		esac
		;;
	esac
	arg_list="$arg_list${arg_list:+,}$key:$value"
}

write_headers() {
	printf '%sAuthorization: Bearer %s\n' "$1" "$token"
	[ -z "$session" ] || printf '%sX-Aileron-Session-Id: %s\n' "$1" "$session"
	printf '%sX-Aileron-Version: %s\n' "$1" "$shim_version"
	printf '%sContent-Type: application/json\n' "$1"
	printf '%sAccept: application/json\n' "$1"
}

[ $# -gt 0 ] || usage_error "no $kind given"
case $1 in
-h | --help | help)
	help_tool
	exit 0
	;;
-*) usage_error "unknown option '$1'" ;;
esac
sub=$1
shift
select_sub "$sub" || usage_error "unknown $kind '$sub' (run '$tool --help' for the list)"

mode=
args_json=
arg_list=
seen=' '
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help | help)
		help_sub
		exit 0
		;;
	--args)
		[ $# -ge 2 ] || usage_error "--args needs a JSON object"
		set_args "$2"
		shift 2
		;;
	--args=*)
		set_args "${1#--args=}"
		shift
		;;
	--arg)
		[ $# -ge 2 ] || usage_error "--arg needs NAME=VALUE"
		add_arg "$2"
		shift 2
		;;
	--arg=*)
		add_arg "${1#--arg=}"
		shift
		;;
	*) usage_error "unexpected '$1' (use --args JSON or --arg NAME=VALUE)" ;;
	esac
done
if [ "$mode" = args ]; then
	body="$prefix$args_json}"
else
	body="$prefix{$arg_list}}"
fi

api=${AILERON_API_URL:-}
token=${AILERON_TOKEN:-}
session=${AILERON_SESSION_ID:-}
launch="start the agent with 'aileron launch --sandbox=...'"
[ -n "$api" ] || fail 69 "AILERON_API_URL is not set; $launch"
case $api in
http://* | https://*) ;;
*) fail 69 "AILERON_API_URL must be an http:// or https:// URL, not '$api'" ;;
esac
[ -n "$token" ] || fail 69 "AILERON_TOKEN is not set; $launch"
case $api$token$session in
*"$nl"* | *"$cr"*)
	fail 69 "AILERON_API_URL, AILERON_TOKEN or AILERON_SESSION_ID holds a line break"
	;;
esac
url=${api%/}$path

if command -v curl >/dev/null 2>&1; then
	client=curl
elif command -v wget >/dev/null 2>&1; then
	client=wget
else
	fail 69 "neither curl nor wget is on PATH; one of them is needed to reach the Aileron daemon"
fi

umask 077
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aileron-shim.XXXXXX") ||
	fail 73 "cannot create a temporary directory in ${TMPDIR:-/tmp}"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
printf '%s' "$body" >"$tmp/body"
: >"$tmp/out"

if [ "$client" = curl ]; then
	write_headers '' >"$tmp/headers"
	code=$(curl -sS --noproxy '*' --connect-timeout @CONNECT_TIMEOUT@ --max-time @MAX_TIME@ \
		-H @"$tmp/headers" --data-binary @"$tmp/body" -o "$tmp/out" -w '%{http_code}' \
		"$url" 2>"$tmp/err") || code=
else
	write_headers 'header = ' >"$tmp/wgetrc"
	wget --config="$tmp/wgetrc" -q -S --content-on-error --no-proxy --max-redirect=0 \
		--tries=1 --dns-timeout=@CONNECT_TIMEOUT@ --connect-timeout=@CONNECT_TIMEOUT@ \
		--read-timeout=@MAX_TIME@ --post-file="$tmp/body" -O "$tmp/out" "$url" 2>"$tmp/err"
	case $? in
	0 | 6 | 8) code=$(awk '$1 ~ /^HTTP\// { c = $2 } END { print c }' "$tmp/err") ;;
	*) code= ;;
	esac
fi

case $code in
200)
	cat "$tmp/out"
	printf '\n'
	exit 0
	;;
202)
	cat "$tmp/out"
	printf '\n'
	approval=$(awk 'match($0, /"approval_id" *: *"[^"]*"/) {
		s = substr($0, RSTART, RLENGTH)
		sub(/^"approval_id" *: *"/, "", s)
		sub(/"$/, "", s)
		print s
		exit
	}' "$tmp/out")
	printf '%s: approval %s is pending — ask the user to run: aileron approval approve %s\n' \
		"$tool" "$approval" "$approval" >&2
	exit 75
	;;
[0-9][0-9][0-9])
	printf '%s: error (HTTP %s): ' "$tool" "$code" >&2
	cat "$tmp/out" >&2
	printf '\n' >&2
	exit 1
	;;
esac
fail 69 "Aileron daemon unreachable at $api"
""".replace("@CONNECT_TIMEOUT@", str(CONNECT_TIMEOUT_S)).replace("@MAX_TIME@", str(MAX_TIME_S))
