# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "ffi"
require "ffi-rzmq"

module Zeromesh
  # Non-blocking send and receive that keep the GVL.
  #
  # ffi-rzmq attaches every libzmq function as :blocking, so each call gives
  # up the GVL and must win it back. While a handler thread computes in pure
  # Ruby, winning it back takes up to one thread time slice (100 ms), and a
  # single multipart receive is half a dozen such calls: heartbeats from the
  # I/O thread then slip by half a second and more. Calls with ZMQ_DONTWAIT
  # never wait, so these bindings keep the GVL through them; only zmq_poll
  # (via ffi-rzmq's Poller) still releases it, once per wake-up.
  module NonblockingZMQ
    extend FFI::Library
    ffi_lib_flags :now, :global
    ffi_lib ::LibZMQ.ffi_libraries.map(&:name)

    attach_function :zmq_send, %i[pointer buffer_in size_t int], :int
    attach_function :zmq_msg_init, [:pointer], :int
    attach_function :zmq_msg_recv, %i[pointer pointer int], :int
    attach_function :zmq_msg_data, [:pointer], :pointer
    attach_function :zmq_msg_size, [:pointer], :size_t
    attach_function :zmq_msg_more, [:pointer], :int
    attach_function :zmq_msg_close, [:pointer], :int
    attach_function :zmq_errno, [], :int

    # sizeof(zmq_msg_t) is 64 bytes in libzmq 4.x.
    MSG_T_SIZE = 64

    module_function

    # Send every frame with ZMQ_DONTWAIT. :sent, or :again when the send queue
    # is full. libzmq queues a multipart message whole or not at all, and
    # refuses only its first part when full.
    def send_frames(socket_ptr, frames)
      last = frames.length - 1
      frames.each_with_index do |frame, i|
        flags = ZMQ::DONTWAIT | (i < last ? ZMQ::SNDMORE : 0)
        next unless zmq_send(socket_ptr, frame, frame.bytesize, flags).negative?

        errno = zmq_errno
        return :again if errno == ZMQ::EAGAIN && i.zero?

        return errno
      end
      :sent
    end

    # One whole multipart message as binary Strings, :again when none is
    # waiting, or the errno of a failure.
    def recv_frames(socket_ptr)
      msg = FFI::MemoryPointer.new(MSG_T_SIZE)
      frames = []
      loop do
        zmq_msg_init(msg)
        if zmq_msg_recv(msg, socket_ptr, ZMQ::DONTWAIT).negative?
          errno = zmq_errno
          zmq_msg_close(msg)
          return errno == ZMQ::EAGAIN && frames.empty? ? :again : errno
        end
        frames << zmq_msg_data(msg).read_bytes(zmq_msg_size(msg))
        more = zmq_msg_more(msg) == 1
        zmq_msg_close(msg)
        return frames unless more
      end
    end
  end
end
