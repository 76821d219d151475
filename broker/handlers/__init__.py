"""One module per Kafka API family; each handler is an async function."""
