import pytest

from brook.broker.config import BrokerConfig, ConfigError, Listener, parse_properties


def test_defaults_are_a_single_local_node():
    config = BrokerConfig.from_sources()
    assert config.node_id == 0
    assert config.client_listener == Listener("PLAINTEXT", "127.0.0.1", 9092)
    assert [str(d) for d in config.log_dirs] == ["brook-data"]
    assert config.retention_ms == 168 * 3_600_000
    assert config.auto_create_topics is True


def test_properties_file_then_overrides_win():
    text = """
    # a Kafka server.properties
    node.id=3
    listeners=PLAINTEXT://127.0.0.2:9192
    log.dirs=/tmp/a,/tmp/b
    ! another comment style
    log.retention.hours: 1
    """
    config = BrokerConfig.from_sources(text, ["node.id=4", "log.retention.ms=500"])
    assert config.node_id == 4
    assert config.client_listener.port == 9192
    assert [str(d) for d in config.log_dirs] == ["/tmp/a", "/tmp/b"]
    assert config.retention_ms == 500


def test_retention_precedence_minutes_over_hours():
    assert BrokerConfig.from_sources(None, ["log.retention.minutes=2"]).retention_ms == 120_000


def test_unknown_keys_are_kept_and_reported():
    config = BrokerConfig.from_sources("some.plugin.setting=x\n")
    assert config.unknown == ("some.plugin.setting",)


@pytest.mark.parametrize("override, fragment", [
    ("num.partitions=zero", "num.partitions"),
    ("auto.create.topics.enable=maybe", "auto.create.topics.enable"),
    ("listeners=nonsense", "listener"),
    ("message.max.bytes=0", "message.max.bytes"),
    ("novalue", "key=value"),
])
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        BrokerConfig.from_sources(None, [override])


def test_malformed_properties_line_is_refused():
    with pytest.raises(ConfigError, match="line 2"):
        parse_properties("a=b\njust-a-word\n")


def test_advertised_listener_defaults_to_listener_and_can_differ():
    config = BrokerConfig.from_sources(None, [
        "listeners=PLAINTEXT://0.0.0.0:9092",
        "advertised.listeners=PLAINTEXT://broker-0.example:9092"])
    assert config.advertised_client_listener.host == "broker-0.example"


def test_metrics_listener_can_be_disabled():
    assert BrokerConfig.from_sources(None, ["brook.metrics.listener="]).metrics_listener is None
    assert BrokerConfig.from_sources().metrics_listener == ("127.0.0.1", 9404)
