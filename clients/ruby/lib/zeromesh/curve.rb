# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "ffi-rzmq"
require_relative "errors"
require_relative "sockets"

module Zeromesh
  # CURVE keys for a client's sockets (SPEC 14.4): the certificate files of
  # czmq and pyzmq's zmq.auth, and the two settings that name them.
  #
  # A certificate is a small text file: unindented lines name a section,
  # indented `name = "value"` lines fill it, full-line `#` comments are
  # skipped (only full lines: '#' is a Z85 character, so a key may hold one).
  #
  #   metadata
  #       roles = "producer worker:render"
  #   curve
  #       public-key = "Z85 (40 characters)"
  #       secret-key = "Z85 (40 characters)"     (only in NAME.key_secret)
  module Curve
    # A CURVE key in Z85: 32 bytes as 40 printable characters.
    KEY_LENGTH = 40
    Z85_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    SERVER_SETTING = "ZEROMESH_CURVE_SERVER (curve_server)"
    SECRET_SETTING = "ZEROMESH_CURVE_SECRET (curve_secret)"

    # name: the file's stem (the identity the broker logs); secret_key nil in a public certificate.
    Certificate = Struct.new(:name, :public_key, :secret_key, :metadata, keyword_init: true)

    # What a client's sockets need: one broker key per endpoint (or one for
    # all) and the client's own pair.
    class Settings
      attr_reader :server_keys, :public_key

      def initialize(server_keys, public_key, secret_key)
        @server_keys = server_keys.freeze
        @public_key = public_key
        @secret_key = secret_key
      end

      # The broker key of endpoint index (the only one when one serves all).
      def server_key(index)
        @server_keys[@server_keys.size > 1 ? index : 0]
      end

      # Make sock a CURVE client of broker index. Before each connect: libzmq
      # takes the options a connection uses when it is made, so one SUB can
      # connect to several brokers, each with its own key.
      def apply(sock, index)
        Sockets.set(sock, ZMQ::CURVE_SERVERKEY, server_key(index))
        Sockets.set(sock, ZMQ::CURVE_PUBLICKEY, @public_key)
        Sockets.set(sock, ZMQ::CURVE_SECRETKEY, @secret_key)
      end

      # Never show the secret (an exception or a log line may print this object).
      def inspect
        "#<#{self.class} public_key=#{@public_key} server_keys=#{@server_keys.inspect}>"
      end
    end

    module_function

    def key?(text)
      text.is_a?(String) && text.size == KEY_LENGTH && text.each_char.all? { |c| Z85_CHARS.include?(c) }
    end

    # The client's settings from the arguments (nil or "" = not set), for a
    # client of n_endpoints brokers; nil when neither is set (NULL mechanism).
    # CertificateError naming the setting when they cannot be used.
    def settings(curve_server, curve_secret, n_endpoints)
      server = curve_server.to_s.strip
      secret = curve_secret.to_s.strip
      return nil if server.empty? && secret.empty?
      if server.empty? || secret.empty?
        raise CertificateError, "CURVE needs both the broker's public key and this client's secret: " \
                                "#{server.empty? ? SERVER_SETTING : SECRET_SETTING} is not set"
      end

      entries = server.split(",", -1)
      unless [1, n_endpoints].include?(entries.size)
        raise CertificateError, "#{SERVER_SETTING} lists #{entries.size} keys for #{n_endpoints} broker endpoints: " \
                                "give one key for every broker, or one per endpoint in the same order"
      end

      own = read_certificate(secret, SECRET_SETTING)
      unless own.secret_key
        raise CertificateError, "#{SECRET_SETTING}: #{secret} holds no secret-key (give the NAME.key_secret file)"
      end

      Settings.new(entries.map { |entry| server_key(entry.strip) }, own.public_key, own.secret_key)
    end

    # A broker key: 40 Z85 characters, or a certificate file holding it.
    def server_key(entry)
      return entry if key?(entry)
      raise CertificateError, "#{SERVER_SETTING}: an empty entry in the list" if entry.empty?
      unless File.file?(entry)
        raise CertificateError, "#{SERVER_SETTING}: #{entry.inspect} is neither a 40-character Z85 key " \
                                "nor a certificate file"
      end

      read_certificate(entry, SERVER_SETTING).public_key
    end

    # Parse one certificate file; setting names where its path came from, for the message.
    def read_certificate(path, setting = nil)
      where = setting ? "#{setting}: " : ""
      begin
        text = File.read(path, encoding: "UTF-8")
      rescue SystemCallError, IOError => e
        raise CertificateError, "#{where}cannot read certificate #{path}: #{e.message}"
      end
      raise CertificateError, "#{where}#{path} is not UTF-8 text" unless text.valid_encoding?

      sections = parse(text, path, where)
      curve = sections.fetch("curve", {})
      public_key = curve["public-key"]
      secret_key = curve["secret-key"]
      unless key?(public_key)
        raise CertificateError, "#{where}#{path}: no valid public-key (40 Z85 characters) in its curve section"
      end
      if secret_key && !key?(secret_key)
        raise CertificateError, "#{where}#{path}: its secret-key is not 40 Z85 characters"
      end

      Certificate.new(name: File.basename(path).delete_suffix("_secret").delete_suffix(".key"),
                      public_key: public_key, secret_key: secret_key, metadata: sections.fetch("metadata", {}))
    end

    # { section => { name => value } }.
    def parse(text, path, where)
      sections = {}
      current = nil
      text.each_line.with_index(1) do |raw, number|
        line = raw.rstrip
        next if line.strip.empty? || line.lstrip.start_with?("#")

        unless line.start_with?(" ", "\t")
          current = (sections[line.strip] ||= {})
          next
        end
        name, eq, value = line.strip.partition("=")
        if current.nil? || eq.empty?
          raise CertificateError, "#{where}#{path}:#{number}: expected 'name = \"value\"' inside a section, " \
                                  "got #{raw.chomp.inspect}"
        end
        current[name.strip] = unquote(value.strip)
      end
      sections
    end

    def unquote(value)
      return value[1..-2] if value.size >= 2 && %w[" '].include?(value[0]) && value[-1] == value[0]

      value
    end
  end
end
