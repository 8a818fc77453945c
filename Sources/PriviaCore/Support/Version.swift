/// The version of this server, reported by `/api/health` and `privia --version`.
public enum PriviaVersion {
    public static let current = "0.1.0"
}
