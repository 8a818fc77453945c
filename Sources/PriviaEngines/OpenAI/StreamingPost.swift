import CCurl
import Foundation

/// Receives one streaming HTTP response, on the thread that runs the transfer.
protocol StreamingResponseReceiver: AnyObject {
    /// Body bytes as they arrive; `status` is the final status code. False aborts the transfer.
    func receive(_ bytes: UnsafeRawBufferPointer, status: Int) -> Bool
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
    }

    enum Outcome: Equatable {
        /// The response ended (any status).
        case completed
        /// The receiver returned false from `receive`.
        case abortedByReceiver
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

    /// libcurl's global initialisation, once per process, before any handle exists.
    private static let globalInit: Bool = privia_curl_global_init_default() == CURLE_OK

    static func perform(_ request: Request, receiver: StreamingResponseReceiver) -> Response {
        guard globalInit, let easy = curl_easy_init() else {
            return Response(outcome: .failed(code: 0, message: "libcurl could not start"), status: 0, headers: [:])
        }
        guard let multi = curl_multi_init() else {
            curl_easy_cleanup(easy)
            return Response(outcome: .failed(code: 0, message: "libcurl could not start"), status: 0, headers: [:])
        }
        let state = TransferState(receiver: receiver)
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in request.headers { headerList = curl_slist_append(headerList, header) }
        defer {
            curl_multi_remove_handle(multi, easy)  // closes an unfinished connection
            curl_easy_cleanup(easy)
            curl_multi_cleanup(multi)
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
        privia_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        if let proxy = request.proxy { privia_curl_setopt_string(easy, CURLOPT_PROXY, proxy) }
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
            return Response(outcome: .failed(code: 0, message: "libcurl could not start"), status: 0, headers: [:])
        }
        let clock = ContinuousClock()
        let deadline = clock.now + seconds(request.totalTimeoutSeconds)
        let idleLimit = seconds(request.idleTimeoutSeconds)
        state.lastActivity = clock.now
        var outcome: Outcome
        while true {
            var running: Int32 = 0
            let multiCode = curl_multi_perform(multi, &running)
            if state.abortedByReceiver {
                outcome = .abortedByReceiver
                break
            }
            if multiCode != CURLM_OK {
                outcome = .failed(code: 0, message: String(cString: curl_multi_strerror(multiCode)))
                break
            }
            if running == 0 {
                var code = CURLE_OK
                var left: Int32 = 0
                while let message = curl_multi_info_read(multi, &left) {
                    if message.pointee.msg == CURLMSG_DONE { code = message.pointee.data.result }
                }
                if code == CURLE_OK {
                    outcome = .completed
                } else {
                    let detail = String(cString: errorBuffer)
                    outcome = .failed(code: code.rawValue, message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
                }
                break
            }
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
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, Self.pollIntervalMilliseconds, &ready)
        }
        return Response(outcome: outcome, status: state.status, headers: state.headers)
    }

    private static func milliseconds(_ seconds: Double) -> Int {
        Int((seconds * 1000).rounded(.up))
    }

    private static func seconds(_ seconds: Double) -> Duration {
        .milliseconds(milliseconds(seconds))
    }
}

/// What the libcurl callbacks see of one transfer; lives on the transfer's thread only.
private final class TransferState {
    let receiver: StreamingResponseReceiver
    var status = 0
    var headers: [String: String] = [:]
    var lastActivity = ContinuousClock.now
    var abortedByReceiver = false

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

    func body(_ bytes: UnsafeRawBufferPointer) -> Bool {
        lastActivity = .now
        if receiver.receive(bytes, status: status) { return true }
        abortedByReceiver = true
        return false
    }
}
