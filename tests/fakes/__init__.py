"""Fakes of the world outside this machine, for the tests, benchmarks and agent runs.

They live here, outside every shipped wheel: ``fakes.provider`` is a local LLM provider
(OpenAI chat completions and responses, Anthropic messages; streaming, errors, tool calls)
and ``fakes.script`` the tool-call scripts it plays. ``tests`` is on ``sys.path`` for pytest
(``pytest.ini``) and for the benchmarks (``bench/benchlib.py``); a child process gets it on
``PYTHONPATH``, e.g. ``PYTHONPATH=tests python -m fakes.provider --port 0 --key K``.
"""
