import type { Command } from "commander";
import { invalidConfig } from "../../core/errors.js";
import { LIFECYCLE_EVENT_TYPES, type LifecycleEventType } from "../../core/lifecycle.js";
import { type GlobalFlags, withBackend } from "../context.js";
import { printJson, printTable } from "../output.js";
import { collect } from "./options.js";

interface AddFlags extends GlobalFlags {
  url: string;
  event: string[];
  disabled?: boolean;
}

interface DeliveriesFlags extends GlobalFlags {
  limit: string;
  status?: string;
}

/**
 * `webhook add|list|rm|deliveries`, on the database or through a service
 * (TOKENWARDEN_URL). `add` of a new webhook prints its signing secret once, from the
 * answer that created it (there is no other); the running service delivers.
 */
export function registerWebhookCommands(program: Command): void {
  const webhook = program
    .command("webhook")
    .description("manage lifecycle webhooks (Standard Webhooks, signed)");

  webhook
    .command("add <id>")
    .description("create or update a webhook; a new one's signing secret is printed once")
    .requiredOption("--url <url>", "https://..., or http:// on loopback")
    .option(
      "--event <type>",
      `an event it takes (repeatable; default all: ${LIFECYCLE_EVENT_TYPES.join(", ")})`,
      collect,
      [],
    )
    .option("--disabled", "keep it, but deliver nothing to it")
    .action(async (id: string, _flags: AddFlags, command: Command) => {
      const flags = command.optsWithGlobals<AddFlags>();
      for (const event of flags.event) {
        if (!(LIFECYCLE_EVENT_TYPES as readonly string[]).includes(event))
          throw invalidConfig(
            "event",
            `${event} is not one of ${LIFECYCLE_EVENT_TYPES.join(", ")}`,
          );
      }
      await withBackend(flags, async (api) => {
        const { webhook: view, created } = await api.webhooks.put(id, {
          url: flags.url,
          ...(flags.event.length === 0 ? {} : { events: flags.event as LifecycleEventType[] }),
          enabled: flags.disabled !== true,
        });
        if (flags.json === true) return printJson(view);
        process.stdout.write(`${created ? "created" : "updated"} webhook ${id} -> ${view.url}\n`);
        if (view.secret !== undefined)
          process.stdout.write(`signing secret (shown once): ${view.secret}\n`);
      });
    });

  webhook
    .command("list")
    .description("list webhooks")
    .action(async (_flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        const hooks = await api.webhooks.list();
        if (flags.json === true) return printJson(hooks);
        printTable(
          ["ID", "URL", "EVENTS", "ENABLED"],
          hooks.map((h) => [
            h.id,
            h.url,
            h.events.length === LIFECYCLE_EVENT_TYPES.length ? "all" : h.events.join(","),
            h.enabled ? "yes" : "no",
          ]),
        );
      });
    });

  webhook
    .command("rm <id>")
    .description("delete a webhook and its deliveries")
    .action(async (id: string, _flags: GlobalFlags, command: Command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      await withBackend(flags, async (api) => {
        await api.webhooks.remove(id);
        if (flags.json === true) printJson({ deleted: id });
        else process.stdout.write(`deleted webhook ${id}\n`);
      });
    });

  webhook
    .command("deliveries <id>")
    .description("a webhook's deliveries, newest first, with their status")
    .option("--limit <n>", "how many", "50")
    .option("--status <status>", "pending, succeeded or failed")
    .action(async (id: string, _flags: DeliveriesFlags, command: Command) => {
      const flags = command.optsWithGlobals<DeliveriesFlags>();
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        throw invalidConfig("limit", "must be a whole number from 1 to 500");
      if (flags.status !== undefined && !["pending", "succeeded", "failed"].includes(flags.status))
        throw invalidConfig("status", "must be pending, succeeded or failed");
      await withBackend(flags, async (api) => {
        const deliveries = await api.webhooks.deliveries(id, {
          limit,
          ...(flags.status === undefined ? {} : { status: flags.status as "pending" }),
        });
        if (flags.json === true) return printJson(deliveries);
        printTable(
          ["ID", "TYPE", "CONNECTION", "STATUS", "ATTEMPTS", "LAST", "NEXT"],
          deliveries.map((d) => [
            String(d.id),
            d.type,
            d.connectionId,
            d.status,
            String(d.attempts),
            d.lastHttpStatus === null ? (d.lastError ?? "-") : String(d.lastHttpStatus),
            d.nextAttemptAt ?? "-",
          ]),
        );
      });
    });
}
