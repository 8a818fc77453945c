// Unsent text per conversation, in this tab's sessionStorage: it survives a reload and a
// sign-in after an expired session. Never tokens or anything else.

const key = (conversationID) => `privia.draft.${conversationID || "new"}`;

export function load(conversationID) {
  try { return sessionStorage.getItem(key(conversationID)) || ""; } catch { return ""; }
}

export function save(conversationID, text) {
  try {
    if (text) sessionStorage.setItem(key(conversationID), text);
    else sessionStorage.removeItem(key(conversationID));
  } catch { /* storage full or disabled: the draft lives only on screen */ }
}
