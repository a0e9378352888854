import * as grpc from "@grpc/grpc-js";

type ResponseStream<T> = grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>;

/**
 * The responses of a streaming call as an AsyncIterable: each message in arrival order, then
 * either the end (status OK, or a cancel the caller asked for) or a throw of the call's
 * grpc.ServiceError, which carries the trailing metadata.
 *
 * It listens from the moment the call starts, not from the first `next()`: grpc-js emits the
 * final status as an 'error' event, which would crash the process if it arrived before anyone
 * iterated. It never pauses the call, so messages that arrived before a failure are all
 * delivered before it; callers bound what they ask for (the agent's window, one watch).
 */
export function responsesOf<T>(call: ResponseStream<T>, cancelledByCaller: () => boolean): AsyncIterable<T> {
  const arrived: T[] = [];
  let failure: grpc.ServiceError | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const settle = () => {
    wake?.();
    wake = undefined;
  };
  call.on("data", (message: T) => {
    arrived.push(message);
    settle();
  });
  call.on("error", (err: grpc.ServiceError) => {
    // grpc-js has already pushed the end of the messages; 'end' follows once they are read.
    if (!(cancelledByCaller() && err.code === grpc.status.CANCELLED)) failure ??= err;
  });
  const finish = () => {
    ended = true;
    settle();
  };
  call.on("end", finish);
  call.on("close", finish);

  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          const next = arrived.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (ended) {
            if (failure) throw failure;
            return;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        // The caller stopped reading early (break, throw): the server need not keep sending.
        if (!ended) call.cancel();
      }
    },
  };
}
