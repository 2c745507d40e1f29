/**
 * Keeps one of Node's `process.nextTick` tick objects alive for the life of the service,
 * so that every later nextTick stays on V8's fast path.
 *
 * Why: Node builds each tick as an object literal with symbol keys. When that code is
 * optimised, V8 builds the object inline only while the literal's feedback has seen one
 * shape ("map") per property; it keeps those maps weakly. When the service is idle, no
 * tick object is alive, and a full garbage collection then frees the maps. The next
 * tick makes new maps, V8 takes that for a second shape, and the literal's feedback
 * becomes megamorphic for good: from then on every nextTick (several per request) adds
 * its properties through V8's runtime, thousands of instructions each time. One tick
 * object kept alive keeps its maps alive, and the feedback stays on the one shape.
 * It holds nothing of a request: it is made here, before the service listens.
 */
import { executionAsyncResource } from "node:async_hooks";
import type { FastifyInstance } from "fastify";

const HELD_TICK = Symbol("tokenwarden.heldTick");

/** One tick object: inside a nextTick callback, the running async resource is its tick. */
export function tickObject(): Promise<object> {
  return new Promise((resolve) => process.nextTick(() => resolve(executionAsyncResource())));
}

/** Keeps a tick object as long as `app` lives. Call it before `app.listen`. */
export async function holdTickShape(app: FastifyInstance): Promise<void> {
  app.decorate(HELD_TICK, await tickObject());
}
