"""Kafka's controller.quorum.voters syntax."""

import pytest

from brook.broker.raft.membership import Configuration, Member
from brook.broker.raft.voters import (
    VoterEndpoint,
    configuration_from_voters,
    parse_quorum_voters,
)


def test_parses_kafkas_example():
    voters = parse_quorum_voters("1@localhost:9093,2@host-2.example:9093, 3@10.0.0.3:19093")
    assert voters == (VoterEndpoint(1, "localhost", 9093), VoterEndpoint(2, "host-2.example", 9093),
                      VoterEndpoint(3, "10.0.0.3", 19093))


def test_ipv6_literals_are_bracketed():
    (voter,) = parse_quorum_voters("7@[::1]:9093")
    assert voter == VoterEndpoint(7, "::1", 9093) and voter.address == "[::1]:9093"


def test_empty_means_no_static_voters():
    assert parse_quorum_voters("") == () and parse_quorum_voters("  ") == ()


@pytest.mark.parametrize("text", [
    "1@host", "host:9093", "x@host:9093", "-1@host:9093", "1@:9093", "1@host:0",
    "1@host:65536", "1@host:port", "1@[::1:9093", "1@::1:9093", "1@h:1,,2@h:2",
    "1@a:1,1@b:2",
])
def test_rejects_malformed_values(text):
    with pytest.raises(ValueError):
        parse_quorum_voters(text)


def test_configuration_from_voters_keeps_addresses():
    configuration = configuration_from_voters(parse_quorum_voters("2@b:2,1@a:1"))
    assert configuration == Configuration((Member(1, "a:1"), Member(2, "b:2")))
    assert configuration.voters == {1, 2} and configuration.address(2) == "b:2"
