/**
 * The one home of change stream names: every password change is its own stream,
 * `change-<change id>` (change ids are lowercase UUIDs, as ingest enforces; lookups by an admin's
 * input are lowercased to match). Its SQL twin is change_id_of_stream() (migration 0009), which
 * the admin view uses; lifecycle.int.test.ts checks that the two agree.
 */
const CHANGE_STREAM_PREFIX = "change-";

export function changeStreamId(changeId: string): string {
  return `${CHANGE_STREAM_PREFIX}${changeId.toLowerCase()}`;
}

/** The change id a change stream is named after, or undefined for any other stream. */
export function changeIdOfStream(streamId: string): string | undefined {
  return streamId.startsWith(CHANGE_STREAM_PREFIX) ? streamId.slice(CHANGE_STREAM_PREFIX.length) : undefined;
}
