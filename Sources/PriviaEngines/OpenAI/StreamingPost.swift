import CCurl
import Foundation

/// Receives one streaming HTTP response, on the thread that runs the transfer.
protocol StreamingResponseReceiver: AnyObject {
    /// Body bytes as they arrive; `status` is the final status code.
    func receive(_ bytes: UnsafeRawBufferPointer, status: Int) -> StreamingPost.Reception
    /// Asked about every 50 ms while the transfer runs; false aborts it.
    func keepGoing() -> Bool
}

/// One HTTP POST over libcurl, streamed on the calling thread and bounded in time.
///
/// The transfer is driven through a private multi handle rather than `curl_easy_perform`:
/// `curl_easy_perform` wakes at most once a second while the peer is silent, which is too slow
/// for a stop button; here the loop polls at most `pollInterval` before asking the receiver
/// whether to go on and checking the idle and overall deadlines. Aborting removes the handle,
/// which closes the connection, so the provider sees the client leave and stops billing.
///
/// The handles come from a `CurlHandlePool` and go back to it, so a response read to its end
/// leaves its connection open for the next transfer. libcurl closes a connection whose transfer
/// failed or was removed before the response ended, so none of those is reused.
struct StreamingPost {
    struct Request {
        var url: String
        var headers: [String]
        var body: String
        var connectTimeoutSeconds: Double
        /// No byte for this long (after the request was sent) ends the transfer as stalled.
        var idleTimeoutSeconds: Double
        var totalTimeoutSeconds: Double
        /// nil: libcurl's default (the `https_proxy`/`no_proxy` environment); "": no proxy.
        var proxy: String?
        /// A PEM file of the certificate authorities to trust instead of the system's.
        var caFile: String?
    }

    /// What a receiver wants after some body bytes.
    enum Reception {
        case more
        /// It has all it wants (the answer ended): the rest of the response is read and
        /// dropped, for up to `drainMilliseconds`, so the connection can serve the next
        /// transfer; a response still open then is aborted.
        case enough
        /// Stop now: the connection is closed, so the provider sees the client leave.
        case abort
    }

    enum Outcome: Equatable {
        /// The response ended (any status).
        case completed
        /// The receiver ended the transfer from `receive`, with `.enough` or `.abort`.
        case endedByReceiver
        /// The receiver returned false from `keepGoing`.
        case stoppedByReceiver
        case stalled
        case timedOut
        /// libcurl failed: no connection, TLS, a reset; `message` is libcurl's, with no secrets.
        case failed(code: UInt32, message: String)
    }

    struct Response {
        var outcome: Outcome
        /// 0 when no status line arrived.
        var status: Int
        /// Lower-cased names; the last value wins.
        var headers: [String: String]
    }

    static let pollIntervalMilliseconds: Int32 = 50
    /// A provider that ends its response promptly after the last event costs nothing here; one
    /// that keeps it open costs this much at the end of each answer, and its connection.
    static let drainMilliseconds = 100

    static func perform(_ request: Request, receiver: StreamingResponseReceiver,
                        handles pool: CurlHandlePool = .shared) -> Response {
        guard let handles = pool.take() else {
            return Response(outcome: .failed(code: 0, message: "libcurl could not start"), status: 0, headers: [:])
        }
        let easy = handles.easy, multi = handles.multi
        let state = TransferState(receiver: receiver)
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        var multiFailed = false
        defer {
            curl_multi_remove_handle(multi, easy)  // closes the connection of an unfinished response
            if multiFailed { pool.discard(handles) } else { pool.giveBack(handles) }
            curl_slist_free_all(headerList)
            errorBuffer.deallocate()
        }

        let unmanagedState = Unmanaged.passUnretained(state).toOpaque()
        privia_curl_setopt_string(easy, CURLOPT_URL, request.url)
        privia_curl_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        privia_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)  // threads: no SIGALRM for DNS timeouts
        privia_curl_setopt_long(easy, CURLOPT_POST, 1)
        privia_curl_setopt_long(easy, CURLOPT_POSTFIELDSIZE, request.body.utf8.count)
        privia_curl_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, request.body)
        privia_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)
        privia_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(request.connectTimeoutSeconds))
        // A backstop only: the loop below enforces the overall cap itself, with a clearer error.
        privia_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, milliseconds(request.totalTimeoutSeconds) + 2_000)
        privia_curl_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        privia_curl_setopt_long(easy, CURLOPT_MAXAGE_CONN, CurlHandlePool.idleLifetimeSeconds)
        privia_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        if let proxy = request.proxy { privia_curl_setopt_string(easy, CURLOPT_PROXY, proxy) }
        if let caFile = request.caFile { privia_curl_setopt_string(easy, CURLOPT_CAINFO, caFile) }
        privia_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, unmanagedState)
        privia_curl_setopt_header(easy) { buffer, size, count, userdata in
            let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
            state.header(UnsafeRawBufferPointer(start: buffer, count: size * count))
            return size * count
        }
        privia_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, unmanagedState)
        privia_curl_setopt_write(easy) { buffer, size, count, userdata in
            let state = Unmanaged<TransferState>.fromOpaque(userdata!).takeUnretainedValue()
            // Anything but size * count makes libcurl abort with CURLE_WRITE_ERROR.
            return state.body(UnsafeRawBufferPointer(start: buffer, count: size * count)) ? size * count : 0
        }

        guard curl_multi_add_handle(multi, easy) == CURLM_OK else {
            multiFailed = true
            return Response(outcome: .failed(code: 0, message: "libcurl could not start"), status: 0, headers: [:])
        }
        let clock = ContinuousClock()
        let deadline = clock.now + seconds(request.totalTimeoutSeconds)
        let idleLimit = seconds(request.idleTimeoutSeconds)
        var drainDeadline: ContinuousClock.Instant?
        state.lastActivity = clock.now
        var outcome: Outcome
        while true {
            var running: Int32 = 0
            let multiCode = curl_multi_perform(multi, &running)
            if state.aborted {
                outcome = .endedByReceiver
                break
            }
            if multiCode != CURLM_OK {
                multiFailed = true
                outcome = .failed(code: 0, message: String(cString: curl_multi_strerror(multiCode)))
                break
            }
            if running == 0 {
                var code = CURLE_OK
                var left: Int32 = 0
                while let message = curl_multi_info_read(multi, &left) {
                    if message.pointee.msg == CURLMSG_DONE { code = message.pointee.data.result }
                }
                if state.hadEnough {
                    outcome = .endedByReceiver
                } else if code == CURLE_OK {
                    outcome = .completed
                } else {
                    let detail = String(cString: errorBuffer)
                    outcome = .failed(code: code.rawValue, message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
                }
                break
            }
            var wait = Self.pollIntervalMilliseconds
            if state.hadEnough {
                // The answer is whole: only the end of the response is awaited, briefly.
                let now = clock.now
                let end = drainDeadline ?? now + .milliseconds(Self.drainMilliseconds)
                drainDeadline = end
                if now >= end {
                    outcome = .endedByReceiver
                    break
                }
                wait = min(wait, Int32(max(1, milliseconds(end - now))))
            } else {
                if !receiver.keepGoing() {
                    outcome = .stoppedByReceiver
                    break
                }
                let now = clock.now
                if now - state.lastActivity >= idleLimit {
                    outcome = .stalled
                    break
                }
                if now >= deadline {
                    outcome = .timedOut
                    break
                }
            }
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, wait, &ready)
        }
        return Response(outcome: outcome, status: state.status, headers: state.headers)
    }

    private static func milliseconds(_ seconds: Double) -> Int {
        Int((seconds * 1000).rounded(.up))
    }

    private static func seconds(_ seconds: Double) -> Duration {
        .milliseconds(milliseconds(seconds))
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// What the libcurl callbacks see of one transfer; lives on the transfer's thread only.
private final class TransferState {
    let receiver: StreamingResponseReceiver
    var status = 0
    var headers: [String: String] = [:]
    var lastActivity = ContinuousClock.now
    /// The receiver answered `.enough` or `.abort`: later bytes are not its business.
    var hadEnough = false
    /// The receiver answered `.abort`.
    var aborted = false

    init(receiver: StreamingResponseReceiver) { self.receiver = receiver }

    /// One header line. A status line starts a new header block (after a `100 Continue`, say).
    func header(_ bytes: UnsafeRawBufferPointer) {
        lastActivity = .now
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            headers = [:]
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }

    /// False aborts the transfer.
    func body(_ bytes: UnsafeRawBufferPointer) -> Bool {
        lastActivity = .now
        if hadEnough { return true }  // the rest of a response whose receiver has all it wants
        switch receiver.receive(bytes, status: status) {
        case .more:
            return true
        case .enough:
            hadEnough = true
            return true
        case .abort:
            hadEnough = true
            aborted = true
            return false
        }
    }
}
