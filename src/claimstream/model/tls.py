"""The TLS client settings Kafka's and Redis's connections share (`claimstream.kafka.security`,
`claimstream.freezes.connection`): a CA file, a client certificate and its key, whether the
host name is checked, each set by a variable of its own family (`CLAIMSTREAM_KAFKA_SSL_*`,
`CLAIMSTREAM_REDIS_TLS_*`). What both check, with the same sentences naming the variable:
which of them are set (to refuse them where TLS is off), that a certificate comes with its key,
that the files can be read. (Their true/false variables: `claimstream.model.config.env_flag`.)

Plain values and the standard library only: the pure core's rules hold here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from claimstream.model.config import ConfigError

__all__ = ["TlsFiles", "TlsVariables"]


@dataclass(frozen=True, slots=True)
class TlsVariables:
    """The names of one family's TLS variables, for the messages."""

    ca_file: str
    cert_file: str
    key_file: str
    check_hostname: str


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A TLS client's files (None: unset) and host-name check, as one family's variables
    (`names`) set them."""

    names: TlsVariables
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    check_hostname: bool = True

    def given(self) -> list[str]:
        """The names of the variables that are set (the host-name check: when switched off)."""
        names = self.names
        given = [
            name
            for name, value in (
                (names.ca_file, self.ca_file),
                (names.cert_file, self.cert_file),
                (names.key_file, self.key_file),
            )
            if value is not None
        ]
        if not self.check_hostname:
            given.append(names.check_hostname)
        return given

    def check_pair(self) -> None:
        """`ConfigError` when the client certificate comes without its key, or the key alone."""
        if (self.cert_file is None) != (self.key_file is None):
            names = self.names
            missing = names.key_file if self.key_file is None else names.cert_file
            raise ConfigError(
                f"{missing} is missing: mutual TLS needs both {names.cert_file} and "
                f"{names.key_file}"
            )

    def check_readable(self, *, ca: bool = True) -> None:
        """`ConfigError` naming the first file set that this process cannot read (the CA file
        too unless `ca` is False)."""
        names = self.names
        files = ((names.cert_file, self.cert_file), (names.key_file, self.key_file))
        for name, path in ((names.ca_file, self.ca_file), *files) if ca else files:
            if path is not None and not os.access(path, os.R_OK):
                raise ConfigError(f"{name}: cannot read {path}")
