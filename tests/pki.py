"""The PKI of the TLS tests: fixed validity windows around the modem epoch 2026-06-01, so
certificate checks at the modem's (SNTP) clock are deterministic."""

from atmodem.lab.pki import issue, utc


class Pki:
    """Everything the TLS tests need, valid around the modem epoch 2026-06-01."""

    def __init__(self):
        self.root = issue("atmodem Test Root", None, ca=True, start=utc(2025), end=utc(2035))
        self.intermediate = issue("atmodem Test Intermediate", self.root, ca=True, start=utc(2025), end=utc(2034))
        hosts = ("tls.test", "127.0.0.1")
        self.leaf = issue("tls.test", self.intermediate, ca=False, start=utc(2026), end=utc(2027), hosts=hosts)
        self.expired = issue("tls.test", self.intermediate, ca=False, start=utc(2020), end=utc(2021), hosts=hosts)
        self.future = issue("tls.test", self.intermediate, ca=False, start=utc(2030), end=utc(2031), hosts=hosts)
        self.wrong_host = issue("other.test", self.intermediate, ca=False, start=utc(2026), end=utc(2027),
                                hosts=("other.test",))
        self.other_root = issue("Someone Else Root", None, ca=True, start=utc(2025), end=utc(2035))
        self.unknown_ca = issue("tls.test", self.other_root, ca=False, start=utc(2026), end=utc(2027), hosts=hosts)
        self.self_signed = issue("tls.test", None, ca=False, start=utc(2026), end=utc(2027), hosts=hosts)
