import type { EventMetadata } from "./schema.js";

export interface NewEvent {
  type: string;
  /** JSON payload (proto3 JSON of the event's message). Never a secret. */
  data: unknown;
  metadata?: EventMetadata;
}

export interface StoredEvent {
  globalPosition: bigint;
  transactionId: bigint;
  streamId: string;
  streamVersion: number;
  partition: number;
  partitionKey: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  createdAt: Date;
}

export interface EventRow {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  stream_version: number;
  partition: number;
  partition_key: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  created_at: Date;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    globalPosition: BigInt(row.global_position),
    transactionId: BigInt(row.transaction_id),
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    partition: row.partition,
    partitionKey: row.partition_key,
    type: row.type,
    data: row.data,
    metadata: row.metadata ?? {},
    createdAt: row.created_at,
  };
}
