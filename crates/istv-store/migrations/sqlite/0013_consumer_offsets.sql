-- Kafka consumer positions of `istv aggregate`, written in the same
-- transaction as the counts of the events consumed up to them: after a
-- crash the store holds exactly the events before each position. A
-- position is the offset of the next message to consume. A batch moves a
-- partition from the position it started at to a new one, and is refused
-- (rolled back whole) when the stored position is not the one it started
-- at: another instance has taken the partition and moved on.
CREATE TABLE consumer_offsets (
    consumer_group TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition_id)
);
