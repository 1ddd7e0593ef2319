import Glibc

/// UEFI firmware for `firmware: uefi`: OVMF from Debian's `ovmf` package — the code (read-only,
/// shared by every guest) and the variable store each guest gets a copy of.
public enum OVMF {
    /// Where Debian puts them, best first: (code, variables).
    public static let candidates = [("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
                                    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd")]
    public static var codeCandidates: [String] { candidates.map(\.0) }

    /// The first pair that is there, or nil: OVMF is not installed.
    public static var installed: (code: String, vars: String)? {
        candidates.first { access($0.0, R_OK) == 0 && access($0.1, R_OK) == 0 }.map { (code: $0.0, vars: $0.1) }
    }
}
