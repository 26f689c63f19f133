"""Harn's visible-text rules (issue 15, item 5): one test per rule, with cases written from the rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acp_bridge.events import harn as h
from acp_bridge.translate import Profile, translate
from acp_bridge.translate.visible_text import _sanitize, sanitize_visible_text


def visible(text: str, *, partial: bool = True) -> str:
    return sanitize_visible_text(text, partial=partial)


# --- 1. hidden blocks --------------------------------------------------------------------------------


def test_think_blocks_are_removed() -> None:
    assert visible("Sure.<think>the user wants x\nso y</think> Here it is.") == "Sure. Here it is."
    assert visible("<think>a</think>one<think>b</think>two") == "onetwo"


def test_an_unclosed_think_hides_everything_after_it() -> None:
    assert visible("Let me see. <think>maybe the cache is") == "Let me see."
    assert visible("Done <think>still", partial=False) == "Done"


@pytest.mark.parametrize(
    "call",
    [
        '<|tool_call|>{"name":"ls"}</|tool_call|>',
        "<tool_call>\nread(path='a')\n</tool_call>",
        "<toolcall>run()</toolcall>",
    ],
)
def test_tool_call_blocks_are_removed(call: str) -> None:
    assert visible(f"Reading it.\n{call}\nGot it.") == "Reading it.\n\nGot it."


def test_done_blocks_and_tool_results_are_removed() -> None:
    assert visible("All set.\n<done>finished: yes</done>") == "All set."
    assert visible('Found it:\n<tool_result id="7">42 lines</tool_result>\nok') == "Found it:\n\nok"


def test_result_markers_are_removed() -> None:
    text = "Checked.\n[result of grep]\nsrc/a.py:3\n[end of grep result]\nNothing else."
    assert visible(text) == "Checked.\n\nNothing else."


def test_done_and_plan_ready_lines_are_removed() -> None:
    assert visible("Step one.\nDONE\nStep two.") == "Step one.\n\nStep two."  # the line empties
    assert visible("The plan is ready.\n  PLAN_READY  ") == "The plan is ready."
    assert visible("Plan written PLAN_READY", partial=False) == "Plan written"
    assert visible("DONE is a word here") == "DONE is a word here"


# --- 2. the ##DONE## sentinel ---------------------------------------------------------------------


def test_the_done_sentinel_is_removed_anywhere_keeping_one_space() -> None:
    assert visible("Fixed.##DONE##Tests pass.") == "Fixed. Tests pass."
    assert visible("Fixed. ##DONE##  Tests pass.", partial=False) == "Fixed. Tests pass."
    assert visible("Fixed.\n##DONE##") == "Fixed."


def test_the_done_sentinel_in_code_stays() -> None:
    assert visible("Print `##DONE##` to stop.") == "Print `##DONE##` to stop."
    fenced = "Example:\n```\necho '##DONE##'\n```"
    assert visible(fenced) == fenced


def test_a_streaming_prefix_of_the_sentinel_is_held_back() -> None:
    assert visible("Nearly there ##DON") == "Nearly there"
    assert visible("Nearly there ##DON", partial=False) == "Nearly there ##DON"


# --- 3. user responses and prose wrappers -----------------------------------------------------------


def test_a_user_response_block_replaces_the_rest() -> None:
    text = "Internal musing.\n<user_response>\n The answer is 4.\n</user_response>\nmore musing"
    assert visible(text) == "The answer is 4."
    two = "<userresponse>First.</userresponse>\nnoise\n<user_response>Second.</user_response>"
    assert visible(two) == "First.\n\nSecond."


def test_a_user_response_mentioned_inline_or_in_a_fence_is_text() -> None:
    inline = "Wrap it as <user_response>x</user_response> please."
    assert visible(inline) == inline
    fenced = "```\n<user_response>x</user_response>\n```\nThat is the format."
    assert visible(fenced) == fenced


def test_assistant_prose_wrappers_are_unwrapped() -> None:
    text = "<assistant_prose>\n  Looking at the file.\n</assistant_prose>\nThen more."
    assert visible(text) == "Looking at the file.\nThen more."


# --- 4-5. tool fences and planner JSON ------------------------------------------------------------


def test_a_json_tool_call_fence_is_removed_other_fences_stay() -> None:
    call = 'Checking.\n```tool\n{"name": "grep", "arguments": {"q": "x"}}\n```\nFound.'
    assert visible(call) == "Checking.\n\nFound."
    not_a_call = 'Like this:\n```tool\n{"name": "grep"}\n```'
    assert visible(not_a_call) == not_a_call


def test_planner_json_fences_are_removed() -> None:
    planner = 'Plan below.\n```json\n{"steps": [{"id": 1}], "note": "x"}\n```\nStarting.'
    assert visible(planner) == "Plan below.\n\nStarting."
    data = 'Your config:\n```json\n{"port": 8080}\n```'
    assert visible(data) == data


def test_inline_planner_json_is_dropped() -> None:
    assert visible('{"mode": "ask_user", "question": "which?"}Which file?') == "Which file?"
    assert visible('Ok. {"mode":"fast_execute","plan":[1,') == "Ok."
    assert visible('Ok. {"mode":"fast_execute","plan":[1,', partial=False) == (
        'Ok. {"mode":"fast_execute","plan":[1,'
    )
    assert visible('{"mode": "debug"}') == '{"mode": "debug"}'


# --- 6. tag litter ----------------------------------------------------------------------------------


def test_truncated_tag_litter_is_removed_outside_fences() -> None:
    assert visible("Edited the file.ol_call>") == "Edited the file."
    assert visible("Edited.\n</assistant_prose>") == "Edited."
    fenced = "```xml\n</tool_call>\n```"
    assert visible(fenced) == fenced


# --- 7. verdict JSON --------------------------------------------------------------------------------


def test_internal_verdict_json_is_dropped() -> None:
    assert visible('{"verdict": "continue", "next_step": "run tests"}') == ""
    assert visible('All green.\n{"verdict":"pass","confidence":0.9}') == "All green."
    assert visible('<done>{"verdict":"done","reason":"ok"} Bye.', partial=False) == "Bye."
    public = '{"verdict": "pass", "summary": "3 tests"}'
    assert visible(public) == public


# --- 8. streaming hold-backs -------------------------------------------------------------------------


def test_a_block_still_open_at_the_end_is_held_back() -> None:
    assert visible("Looking.\n<toolcall>\nread(") == "Looking."
    assert visible("Looking.\n<done>") == "Looking."
    assert visible("Result:\n[result of ls]\na.py") == "Result:"
    assert visible("Next:\n```tool\n{") == "Next:"
    assert visible("Next:\n```to") == "Next:"
    # Only while streaming, and only where a tag would be protocol (start of a line).
    assert visible("Looking.\n<toolcall>\nread(", partial=False) == "Looking.\n<toolcall>\nread("
    assert visible("Type <toolcall> here") == "Type <toolcall> here"


def test_an_open_tool_call_tag_is_litter_before_it_can_be_held_back() -> None:
    # Harn strips tag litter (rule 6) before holding back open blocks (rule 8), and `<tool_call>`
    # matches the litter pattern: the opener goes, what follows it shows. Reproduced as Harn has it.
    assert visible("Looking.\n<tool_call>\nread(") == "Looking.\n\nread("


def test_a_marker_prefix_at_the_start_of_a_line_is_held_back() -> None:
    assert visible("Fine.\n<tool_ca") == "Fine."
    assert visible("Fine.\nPLAN_RE") == "Fine."
    assert visible("Hello WORLD") == "Hello WORLD"  # mid-line: not a marker
    assert visible("a < b") == "a < b"


# --- 9. whitespace ------------------------------------------------------------------------------------


def test_whitespace_is_normalised_and_trimmed() -> None:
    assert visible("  \r\nOne\r\n\r\n\r\nTwo  \n") == "One\n\nTwo"
    assert visible("\u3000spaced\u00a0") == "spaced"


def test_a_chunk_that_is_all_hidden_is_empty() -> None:
    assert visible("<think>only thoughts</think>") == ""
    assert visible("   ") == ""


# --- on the wire ---------------------------------------------------------------------------------------


def _chunk_meta(text: str, profile: Profile) -> dict[str, str] | None:
    [message] = translate(h.AgentMessageChunk(session_id="s", content=text), profile=profile)
    content = message["params"]["update"]["content"]
    assert content["text"] == text  # the text itself is always the raw chunk
    meta = content.get("_meta")
    return None if meta is None else meta["harn"]


def test_the_harn_profile_carries_the_sanitised_chunk() -> None:
    meta = _chunk_meta("Answer: 4 <think>was it 5?", Profile.HARN)
    assert meta == {"visible_text": "Answer: 4", "visible_delta": "Answer: 4"}


def test_an_all_hidden_chunk_keeps_both_fields_empty() -> None:
    meta = _chunk_meta("<think>hmm</think>", Profile.HARN)
    assert meta == {"visible_text": "", "visible_delta": ""}


def test_each_chunk_is_sanitised_alone() -> None:
    # Harn's adapter keeps no state across chunks: a think block split over two chunks is hidden
    # in the first (unclosed) but the second, on its own, shows what follows the closing tag.
    assert _chunk_meta("Hi <think>sec", Profile.HARN) == {
        "visible_text": "Hi",
        "visible_delta": "Hi",
    }
    second = "ret</think> there"
    assert _chunk_meta(second, Profile.HARN) == {"visible_text": second, "visible_delta": second}


def test_the_strict_profile_has_no_visible_copies() -> None:
    assert _chunk_meta("Answer <think>x", Profile.STRICT) is None


# --- the plain-prose shortcut ----------------------------------------------------------------------

_PLAIN = [
    "Hello",
    " ",
    "\n",
    "\r\n",
    "\t",
    "D",
    "DO",
    "DON",
    "P",
    "PLAN_",
    "PL",
    "world.",
    "\u3000",
]
_MARKUP = [
    "DONE",
    "<think>",
    "</think>",
    "##DONE##",
    "<tool_call>",
    "{",
    '"verdict"',
    "`",
    "```tool\n",
]
_PIECES = st.sampled_from([*_PLAIN, *_MARKUP])


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=12), partial=st.booleans())
def test_the_shortcut_agrees_with_every_rule(pieces: list[str], partial: bool) -> None:
    text = "".join(pieces)
    assert sanitize_visible_text(text, partial=partial) == _sanitize(text, partial)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8")), partial=st.booleans())
def test_any_text_gives_a_trimmed_string(text: str, partial: bool) -> None:
    result = _sanitize(text, partial)
    assert result == result.strip(" \t\r\n")


def _hold_back_by_trying_every_prefix(text: str) -> str:
    """The hold-back as first written: every prefix of every marker, in order (the reference)."""
    from acp_bridge.translate import visible_text as vt

    if not text or text[-1] not in vt._MARKER_CHARS:
        return text
    positions = vt._Positions(text)
    for marker in vt._PARTIAL_MARKERS:
        for length in range(len(marker) - 1, 0, -1):
            if text.endswith(marker[:length]):
                cut = len(text) - length
                if positions.protocol_tag_at(cut):
                    return text[:cut]
    return text


_PIECES = st.sampled_from(
    [
        "a",
        " ",
        "\n",
        "`",
        "```",
        "<",
        "<tool",
        "<tool_ca",
        "<|tool",
        "DON",
        "DONE",
        "PLAN_RE",
        "[result",
        "[result of",
        "<done",
        "<assistant_pr",
        "<user_resp",
        "<tool_resu",
        "##",
        "x.",
        "é",
    ]
)


@settings(max_examples=500)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_the_marker_hold_back_finds_what_trying_every_prefix_finds(text: str) -> None:
    from acp_bridge.translate.visible_text import _hold_back_marker_prefix

    assert _hold_back_marker_prefix(text) == _hold_back_by_trying_every_prefix(text)
