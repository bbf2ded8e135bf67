# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "messages"

module Zeromesh
  # The admin operations of SPEC.md section 12 as Client methods, each one
  # ADMIN round trip through Client#admin. The broker answers an unknown queue
  # or job with a RemoteError whose code is "not_found".
  module AdminCalls
    def status
      admin("status")
    end

    # The queue keeps taking pushes and dispatches nothing, on every broker on
    # its Redis (SPEC.md 16.8); jobs in flight finish.
    def pause(queue)
      admin("pause", queue: Messages.name(queue, "queue"))
      nil
    end

    def resume(queue)
      admin("resume", queue: Messages.name(queue, "queue"))
      nil
    end

    # Drop the queue's waiting jobs (in the broker's memory and in Redis; jobs in
    # flight finish, scheduled jobs stay); returns how many were dropped.
    def purge_queue(queue)
      Integer(admin("purge_queue", queue: Messages.name(queue, "queue")).fetch("purged"))
    end

    # The queue's jobs scheduled for later, earliest first, at most limit: Hashes
    # with "id", "due" (ISO 8601, UTC), "due_ms", "size" and maybe "trace".
    def scheduled(queue, limit: 100)
      raise ArgumentError, "limit must be an Integer of at least 1, not #{limit.inspect}" unless limit.is_a?(Integer) && limit >= 1

      Array(admin("scheduled", queue: Messages.name(queue, "queue"), limit: limit)["items"])
    end

    # Remove a scheduled job before it runs (atomically against the broker that
    # would move it: it either runs or is cancelled). queue narrows the search.
    # RemoteError with code "not_found" when no schedule holds it (it ran already, or never was).
    def cancel(id, queue: nil)
      args = { id: Messages.name(id, "id") }
      args[:queue] = Messages.name(queue, "queue") if queue
      admin("cancel", **args)
      nil
    end

    # The broker's periodic schedules ([[schedules]] in its config, SPEC.md
    # 16.7): Hashes with "name", "cron", "timezone", "queue", "last", "next", ...
    def schedules
      Array(admin("schedules")["schedules"])
    end
  end
end
