-- The conversation list is ordered newest first, ties broken by id, both descending
-- (ConversationStore.list and its cursor). The index from 0002 kept ids ascending, so every
-- list sorted its rows in a temporary b-tree; this one hands them over in order.
DROP INDEX IF EXISTS ix_conversations_user_updated;
CREATE INDEX ix_conversations_user_updated ON conversations (user_id, updated_at DESC, id DESC);
