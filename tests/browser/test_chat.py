"""What a person does in the web client: sign up and in, chat with a streaming answer, stop,
rename and delete, and the safety rules (no script from an answer, no other origin)."""

from __future__ import annotations

import re

from conftest import PASSWORD, account, new_email, screenshot, sign_in, signed_in_page

CODE = "def greet(name):\n    return f'hello {name}'\n\nprint(greet('privia'))"
QUESTION_WITH_CODE = f"Please check this:\n\n```python\n{CODE}\n```\n\nThanks"


def assistant_messages(page):
    return page.locator("article.message.assistant")


def test_sign_up_then_sign_in_then_an_answer_streams_with_its_code_block(session):
    page = session.new_page()
    page.goto("/")
    page.wait_for_url("**/signin")
    page.click("text=Create an account")
    page.wait_for_url("**/signup")
    email = new_email()
    page.fill("#auth-email", email)
    page.fill("#auth-password", PASSWORD)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_selector("#composer-input")

    page.click("button.sign-out")
    page.wait_for_url("**/signin")
    page.fill("#auth-email", email)
    page.fill("#auth-password", "not the password")
    page.click("form.auth-form button[type=submit]")
    # The server's own words, not a generic message.
    page.wait_for_selector("#auth-error:not(:empty)")
    assert page.text_content("#auth-error").strip() != ""
    page.fill("#auth-password", PASSWORD)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_selector("#composer-input")

    page.click("button.new-chat")
    page.wait_for_url(re.compile(r".*/c/[A-Za-z0-9_-]+$"))
    page.fill("#composer-input", QUESTION_WITH_CODE)
    page.press("#composer-input", "Enter")

    # Streaming: Stop replaces Send, and part of the answer shows before the end.
    page.wait_for_selector("#stop-button:visible")
    assert page.is_hidden("#send-button")
    answer = assistant_messages(page).last
    page.wait_for_function("() => document.querySelector('article.message.assistant .message-body').textContent.length > 0")
    partial = answer.locator(".message-body").text_content()
    assert partial and len(partial) < len(QUESTION_WITH_CODE)
    assert answer.get_attribute("data-status") == "streaming"

    page.wait_for_selector("#send-button:visible", timeout=30_000)
    assert answer.get_attribute("data-status") == "complete"
    assert answer.locator("pre code").text_content() == CODE + "\n"
    assert answer.locator("pre button.copy-code").count() == 1
    assert answer.locator(".message-meta .model").text_content() == "echo"
    assert page.get_attribute(".messages", "data-transport") == "websocket"

    # The conversation has its own address: a reload shows it again.
    address = page.url
    page.reload()
    page.wait_for_selector("article.message.assistant pre code")
    assert page.url == address
    assert assistant_messages(page).last.locator("pre code").text_content() == CODE + "\n"
    # The sidebar lists it, titled after the question.
    assert page.locator(".conversation-list .conversation").count() == 1
    screenshot(page, "desktop-light")


def test_stop_keeps_the_partial_answer_after_a_reload(session, stack):
    page, _ = signed_in_page(session, stack)
    page.select_option("#model-select", "slow")
    words = " ".join(f"word{i}" for i in range(80))
    page.fill("#composer-input", words)
    page.click("#send-button")
    page.wait_for_function(
        "() => (document.querySelector('article.message.assistant .message-body')?.textContent || '').split(' ').length > 3")
    page.click("#stop-button")
    page.wait_for_selector("#send-button:visible")
    answer = assistant_messages(page).last
    page.wait_for_function("() => document.querySelector('article.message.assistant').dataset.status === 'stopped'")
    assert answer.locator(".status").text_content() == "Stopped"

    page.wait_for_url(re.compile(r".*/c/[A-Za-z0-9_-]+$"))
    page.reload()
    page.wait_for_selector("article.message.assistant")
    kept = assistant_messages(page).last
    text = kept.locator(".message-body").text_content().strip()
    assert kept.get_attribute("data-status") == "stopped"
    assert text and words.startswith(text) and len(text) < len(words)


def test_rename_in_place_then_delete_with_confirmation(session, stack):
    page, _ = signed_in_page(session, stack)
    page.fill("#composer-input", "A question to rename")
    page.press("#composer-input", "Enter")
    page.wait_for_selector("#send-button:visible")
    page.wait_for_url(re.compile(r".*/c/[A-Za-z0-9_-]+$"))
    conversation_id = page.url.rsplit("/", 1)[1]
    row = page.locator(f".conversation[data-id='{conversation_id}']")
    row.wait_for()

    row.locator("button.rename").click()
    page.fill(".rename-input", "Renamed in the browser")
    page.press(".rename-input", "Enter")
    page.wait_for_selector(f".conversation[data-id='{conversation_id}'] >> text=Renamed in the browser")
    page.reload()
    page.wait_for_selector(f".conversation[data-id='{conversation_id}'] >> text=Renamed in the browser")
    assert page.text_content("#chat-title") == "Renamed in the browser"

    row = page.locator(f".conversation[data-id='{conversation_id}']")
    row.locator("button.delete").click()
    row.locator("button.cancel-delete").click()
    assert row.locator("button.delete").count() == 1
    row.locator("button.delete").click()
    row.locator("button.confirm-delete").click()
    page.wait_for_selector(f".conversation[data-id='{conversation_id}']", state="detached")
    page.wait_for_url(re.compile(r".*/$"))
    page.goto(f"/c/{conversation_id}")
    page.wait_for_url(re.compile(r".*/$"))  # gone for the server too: back to a new chat


def test_with_the_websocket_blocked_answers_stream_over_sse(session, stack):
    # The socket's handshake fails as if a proxy refused it: the client falls back to SSE.
    page = session.new_page()
    page.route_web_socket(re.compile(r".*/api/ws/chat.*"), lambda socket: socket.close(code=1011, reason="blocked"))
    email, password = account(stack)
    sign_in(page, email, password)
    page.fill("#composer-input", QUESTION_WITH_CODE)
    page.press("#composer-input", "Enter")
    page.wait_for_selector("#stop-button:visible")
    page.wait_for_function("() => document.querySelector('article.message.assistant .message-body').textContent.length > 0")
    page.wait_for_selector("#send-button:visible", timeout=30_000)
    answer = assistant_messages(page).last
    assert answer.get_attribute("data-status") == "complete"
    assert answer.locator("pre code").text_content() == CODE + "\n"
    assert page.get_attribute(".messages", "data-transport") == "sse"


def test_a_script_in_a_question_or_answer_is_shown_as_text_and_never_runs(session, stack):
    page, _ = signed_in_page(session, stack)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    payload = ('<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=2</script> '
               '[click](javascript:window.__xss=3) <svg onload="window.__xss=4"></svg> '
               '![pixel](https://tracker.example.com/p.png)')
    page.fill("#composer-input", payload)
    page.press("#composer-input", "Enter")
    page.wait_for_selector("#send-button:visible")
    question = page.locator("article.message.user .message-body").last
    assert question.text_content() == payload  # exactly as typed, as text
    answer = assistant_messages(page).last.locator(".message-body")
    assert answer.locator("script, [onerror], [onload], iframe").count() == 0
    assert answer.locator("a[href^='javascript:']").count() == 0
    # The echoed answer's links, if clicked, would not run anything either.
    for link in answer.locator("a").all():
        link.click()
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    # The image pointing elsewhere was never fetched (checked by the fixture for every test).


def test_the_phone_layout_opens_the_sidebar_as_a_drawer_and_the_dark_theme(make_session, stack):
    email, password = account(stack)
    phone = make_session(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True,
                         reduced_motion="reduce")
    page = phone.new_page()
    sign_in(page, email, password)
    page.fill("#composer-input", "A question on a phone with `code`")
    page.press("#composer-input", "Enter")
    page.wait_for_selector("#send-button:visible")
    assert page.is_hidden("#sidebar") or not page.locator("#sidebar").is_visible()
    page.click("button.menu-toggle")
    page.wait_for_selector("#sidebar .conversation")
    assert page.locator("#sidebar").is_visible()
    screenshot(page, "phone-390x844-drawer")
    page.keyboard.press("Escape")
    screenshot(page, "phone-390x844")

    desktop = make_session(color_scheme="dark")
    page = desktop.new_page()
    sign_in(page, email, password)
    page.locator(".conversation-link").first.click()
    page.wait_for_selector("article.message.assistant")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 28)"  # the dark palette (app.css)
    screenshot(page, "desktop-dark")
