"""The README's first command refuses a taken port before it starts anything."""

import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


def test_a_taken_port_is_refused_with_how_to_choose_another():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError) as refused:
            call_command("runstack", "--port", str(port))
    message = str(refused.value)
    assert f"Port {port} on 127.0.0.1 is taken" in message
    assert f"scripts/dev.sh --port {port + 1}" in message
    assert f"PORT={port + 1} scripts/dev.sh" in message
