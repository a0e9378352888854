/**
 * Where an answer goes: the HTTP response, or one sub-response of a `$batch` (the two methods
 * of node's ServerResponse used here, so both paths answer through the same code).
 */
export interface Reply {
  writeHead(status: number, headers?: Record<string, string | number>): unknown;
  end(payload?: string): unknown;
}

/** Context of one request, echoed in Graph's innerError the way the real service does. */
export interface RequestIds {
  requestId: string;
  clientRequestId: string;
}

// Graph prints innerError.date without fractional seconds or zone suffix.
function graphDate(now: Date): string {
  return now.toISOString().slice(0, 19);
}

export function sendJson(res: Reply, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

/** Writes an error exactly in Microsoft Graph's documented shape. */
export function sendGraphError(res: Reply, ids: RequestIds, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(
    res,
    status,
    {
      error: {
        code,
        message,
        innerError: { date: graphDate(new Date()), "request-id": ids.requestId, "client-request-id": ids.clientRequestId },
      },
    },
    headers,
  );
}

export const GraphMessages = {
  complexity: "The specified password does not comply with password complexity requirements. Please provide a different password.",
  forbidden: "Insufficient privileges to complete the operation.",
  dirSynced: "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
  notFound: (id: string) => `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
  throttled: "Too many requests. Please retry again later.",
  tokenMissing: "Access token is empty.",
  tokenInvalid: "Access token validation failure. Invalid audience.",
  tokenExpired: "Lifetime validation failed, the token is expired.",
} as const;
