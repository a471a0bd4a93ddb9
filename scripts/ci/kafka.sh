#!/usr/bin/env bash
# Makes sure a single-node Kafka broker (KRaft mode, no ZooKeeper) can be run by the Kafka destination tests
# (test/brokers/kafka.test.ts start their own on loopback, in a temp dir, and stop it): the Apache Kafka jars from
# Maven Central (org.apache.kafka:kafka_2.13 and its runtime dependencies, 43 MB), copied by Maven into
# .ci/cache/kafka/<version>/libs, run on the installed Java 17. Idempotent (a complete copy is kept); starts nothing.
# Measured here: 9 s to fetch with an empty Maven repository; the broker then starts in about 4 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION="${KAFKA_VERSION:-4.1.1}"
DIR="$PWD/.ci/cache/kafka/$VERSION"

if [ -f "$DIR/complete" ]; then
  echo "kafka: $VERSION jars already in $DIR/libs"
  exit 0
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  echo "kafka: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>hookrelay.ci</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
rm -rf "$DIR"
mkdir -p "$DIR"
echo "kafka: fetching org.apache.kafka:kafka_2.13:$VERSION and its dependencies from Maven Central"
mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$DIR/libs" -Dmaven.repo.local="$PWD/.ci/cache/m2"
ls "$DIR/libs/kafka_2.13-$VERSION.jar" >/dev/null
touch "$DIR/complete"
echo "kafka: $VERSION jars in $DIR/libs ($(ls "$DIR/libs" | wc -l) files)"
