"""The workspace around the chat: regenerate and edit, tabs in step, an ended session, the
sidebar's pages, errors on the sign-in page, math, and the keyboard alone."""

from __future__ import annotations

import re

from conftest import PASSWORD, account, sign_in, signed_in_page

NEW_CONVERSATION = re.compile(r".*/c/[A-Za-z0-9_-]+$")


def ask(page, question: str) -> None:
    page.fill("#composer-input", question)
    page.press("#composer-input", "Enter")
    page.wait_for_selector("#stop-button:visible")
    page.wait_for_selector("#send-button:visible", timeout=30_000)


def last_answer(page) -> str:
    return page.locator("article.message.assistant .message-body").last.text_content().strip()


def test_regenerate_and_edit_replace_the_last_exchange(session, stack):
    page, _ = signed_in_page(session, stack)
    ask(page, "first question")
    page.wait_for_url(NEW_CONVERSATION)
    assert last_answer(page) == "first question"

    page.click("button.regenerate")
    page.wait_for_selector("#send-button:visible", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('article.message').length === 2")
    assert last_answer(page) == "first question"

    page.click("button.edit-question")
    page.fill("textarea.edit-input", "an edited question")
    page.click("form.edit-form button[type=submit]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('article.message.assistant .message-body')].pop()?.textContent.trim()"
        " === 'an edited question' && !document.querySelector('#send-button').hidden")
    page.reload()
    page.wait_for_selector("article.message.assistant")
    texts = page.locator("article.message .message-body").all_text_contents()
    assert [t.strip() for t in texts] == ["an edited question", "an edited question"]


def test_a_second_tab_sees_the_first_tabs_new_conversation(make_session, stack):
    email, password = account(stack)
    browser = make_session()
    first, second = browser.new_page(), browser.new_page()
    sign_in(first, email, password)
    second.goto("/")  # the same browser: the refresh cookie signs this tab in too
    second.wait_for_selector("#composer-input")
    assert second.locator(".conversation").count() == 0

    ask(first, "asked in the first tab")
    first.wait_for_url(NEW_CONVERSATION)
    conversation_id = first.url.rsplit("/", 1)[1]
    second.wait_for_selector(f".conversation[data-id='{conversation_id}']")

    first.locator(f".conversation[data-id='{conversation_id}'] button.rename").click()
    first.fill(".rename-input", "Renamed in tab one")
    first.press(".rename-input", "Enter")
    second.wait_for_selector(f".conversation[data-id='{conversation_id}'] >> text=Renamed in tab one")


def test_an_ended_session_goes_to_sign_in_and_back_to_the_same_draft(session, stack):
    email, password = account(stack)
    page = session.new_page()
    sign_in(page, email, password)
    ask(page, "a conversation to come back to")
    page.wait_for_url(NEW_CONVERSATION)
    address = page.url
    page.fill("#composer-input", "an unsent draft\nwith two lines")

    # Every session of the user ends (as after "sign out everywhere" on another device).
    with stack.client() as client:
        r = client.post("/api/auth/login", json={"email": email, "password": password})
        r = client.post("/api/auth/logout-all", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        assert r.status_code == 204

    page.reload()
    page.wait_for_url("**/signin")
    page.fill("#auth-email", email)
    page.fill("#auth-password", password)
    page.click("form.auth-form button[type=submit]")
    page.wait_for_url(address)
    page.wait_for_selector("article.message.assistant")
    assert page.input_value("#composer-input") == "an unsent draft\nwith two lines"


def test_the_sidebar_loads_a_page_at_a_time_as_it_scrolls(session, stack):
    email, password = account(stack)
    with stack.client() as client:
        token = client.post("/api/auth/login", json={"email": email, "password": password}).json()["access_token"]
        for i in range(35):
            r = client.post("/api/query", json={"question": f"conversation {i}"}, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
    page = session.new_page()
    listed = []
    page.on("request", lambda request: listed.append(request.url) if "/api/conversations?" in request.url or
            request.url.endswith("/api/conversations") else None)
    sign_in(page, email, password)
    page.wait_for_selector(".conversation >> text=conversation 34")  # newest first
    assert page.locator(".conversation").count() == 30
    page.locator(".conversation").last.scroll_into_view_if_needed()
    page.locator(".list-sentinel").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('.conversation').length === 35")
    assert all("limit=" in url for url in listed), listed  # never the whole list in one answer
    assert any("cursor=" in url for url in listed)

    page.fill("#conversation-filter", "conversation 3")
    titles = page.locator(".conversation-link").all_text_contents()
    assert sorted(titles) == sorted(["conversation 3"] + [f"conversation {i}" for i in range(30, 35)])


def test_sign_in_errors_show_the_servers_words_and_when_to_retry(session, stack):
    page = session.new_page()
    page.goto("/signin")
    page.fill("#auth-email", "nobody@example.test")
    page.fill("#auth-password", "wrong password")
    page.click("form.auth-form button[type=submit]")
    page.wait_for_selector("#auth-error:not(:empty)")
    with stack.client() as client:
        detail = client.post("/api/auth/login", json={"email": "nobody@example.test", "password": "wrong password"}).json()["detail"]
    assert page.text_content("#auth-error") == detail

    # nginx's limit answers 429; here with a Retry-After, which the page turns into words.
    page.route("**/api/auth/login", lambda route: route.fulfill(
        status=429, headers={"Retry-After": "12", "Content-Type": "application/json"},
        body='{"detail":"Too many requests, slow down","code":"RATE_LIMIT"}'))
    page.click("form.auth-form button[type=submit]")
    page.wait_for_selector("#auth-error >> text=try again in 12 seconds")


def test_math_renders_between_its_delimiters_only(session, stack):
    page, _ = signed_in_page(session, stack)
    ask(page, "Costs $5 or $6, and $$E = mc^2$$ with \\(a^2 + b^2\\)")
    answer = page.locator("article.message.assistant .message-body").last
    assert answer.locator(".katex").count() == 2
    assert "$5 or $6" in answer.text_content()


def test_keyboard_only_ask_with_a_new_line_then_send(session, stack):
    email, password = account(stack)
    page = session.new_page()
    page.goto("/signin")
    page.wait_for_selector("#auth-email:focus")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#composer-input:focus")
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    page.keyboard.press("Enter")
    page.wait_for_selector("#send-button:visible", timeout=30_000)
    assert page.locator("article.message.user .message-body").last.text_content() == "line one\nline two"
    # Every control on the way is reachable with Tab and shows where the focus is.
    page.keyboard.press("Shift+Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
