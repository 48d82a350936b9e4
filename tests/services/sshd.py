"""OpenSSH sshd on a loopback port for the SFTP polling tests (fixtures; see tests/services/__init__.py)."""
