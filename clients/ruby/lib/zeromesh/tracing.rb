# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require_relative "messages"

module Zeromesh
  # Trace propagation (issue 19): while a Worker's handler runs for a job or
  # request, what that handler pushes or requests carries the handled
  # message's trace and, as parent, its id, so a trace holds every message it
  # led to. The handled message is kept in Thread.current[KEY], which Ruby
  # makes fiber-local: a thread or fiber the handler starts does not see it
  # and passes the trace on by hand (trace: job.trace, parent: job.id).
  module Tracing
    KEY = :zeromesh_current

    module_function

    # The Job whose handler runs in this thread (fiber), or nil.
    def current_job
      Thread.current[KEY]
    end

    # Run the block with job as the current one; the one before comes back
    # afterwards, also when the block raises.
    def within(job)
      before = Thread.current[KEY]
      Thread.current[KEY] = job
      begin
        yield
      ensure
        Thread.current[KEY] = before
      end
    end

    # The trace and parent header fields of a push or request: the explicit
    # trace (with parent only when given), else the current job's trace and id,
    # else none (the broker makes the message its own trace). Checked before anything is sent.
    def fields(trace, parent)
      if trace
        fields = { "trace" => Messages.name(trace, "trace") }
        fields["parent"] = Messages.name(parent, "parent") if parent
        return fields
      end
      raise ArgumentError, "parent: needs a trace: (without one, the current job gives both)" if parent

      job = current_job
      job ? { "trace" => job.trace, "parent" => job.id } : {}
    end
  end

  # The Job whose handler runs in this thread, or nil: a handler that starts
  # threads of its own hands them its trace this way (see Tracing).
  def self.current_job
    Tracing.current_job
  end
end
