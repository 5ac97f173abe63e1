"""Passwords: argon2id hashes, and the policy a new password must meet (等保 2.0: length and
character classes; not the username; not the old one)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from gis.errors import WeakPassword

_hasher = PasswordHasher()
# Verifying against this keeps unknown usernames as slow as wrong passwords (no user probing).
_DUMMY_HASH = _hasher.hash("gridmap-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, InvalidHashError):
        return False


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10
    min_classes: int = 3  # of: lower-case, upper-case, digits, other characters

    def check(self, password: str, *, username: str, old_password: str | None = None) -> None:
        """Raise WeakPassword saying, in both languages, every rule ``password`` breaks."""
        problems: list[tuple[str, str]] = []
        if len(password) < self.min_length:
            problems.append((f"at least {self.min_length} characters", f"至少 {self.min_length} 个字符"))
        if _classes(password) < self.min_classes:
            problems.append((f"at least {self.min_classes} of: lower-case letters, upper-case "
                             "letters, digits, other characters",
                             f"至少包含小写字母、大写字母、数字、其他字符中的 {self.min_classes} 类"))
        if username and username.lower() in password.lower():
            problems.append(("not containing the username", "不得包含用户名"))
        if old_password is not None and password == old_password:
            problems.append(("different from the old password", "不得与旧密码相同"))
        if password != password.strip() or any(c in password for c in "\r\n\t"):
            problems.append(("no leading or trailing spaces or control characters",
                             "首尾不得有空格，不得含控制字符"))
        if problems:
            raise WeakPassword("the password must be " + "; ".join(p[0] for p in problems),
                               zh="密码须" + "；".join(p[1] for p in problems))

    def generate(self) -> str:
        """An initial password that meets the policy, easy to read out over the phone (no 0/O,
        1/l/I)."""
        alphabet = [c for c in string.ascii_letters + string.digits if c not in "0O1lI"]
        while True:
            word = "".join(secrets.choice(alphabet) for _ in range(max(12, self.min_length)))
            word = word[:4] + "-" + word[4:8] + "-" + word[8:]
            if _classes(word) >= max(self.min_classes, 3):
                return word


def _classes(password: str) -> int:
    return sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password)))
