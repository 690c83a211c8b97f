#!/usr/bin/env bash
# Packs what a GPU machine needs to run the Java GPU tests, which it cannot build itself (no Java, no network):
#   OUT_PACK=.gpu-pack bash tests/gpu/pack.sh       (from the repository root; .gpu-pack is the default, git-ignored)
# Runs here, on a machine with JDK 17 and Maven (offline). The pack holds
#   jre/           a jlink runtime of the modules the tests need, with its C headers (tests/gpu/run.sh builds the
#                  JNI glue against them there)
#   classes/       the main classes without native libraries (run.sh builds those there, for that machine)
#   test-classes/  the test classes
#   jni/           the JNI sources JavaCPP generated (cpu/, cuda/)
#   lib/           javacpp and the CUDA presets (Java + linux-x86_64 JNI jars), Gson (training logs and checkpoints),
#                  JUnit's console launcher; not OpenBLAS: the GPU tests compare against the plain-Java reference backend
#   commit.txt     the commit the pack was built from
# and must stay under the device machine's 64 MiB transfer limit with the sources beside it; the script says
# how large it came out and fails above 56 MiB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PACK=${OUT_PACK:-.gpu-pack}
JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
M2=${M2_REPO:-$HOME/.m2/repository}
JAVACPP=1.5.13
CUDA_PRESETS=13.1-9.19-$JAVACPP
JUNIT_CONSOLE=1.14.1
GSON=2.15.0

mvn -q -o -DskipTests test-compile dependency:get -Dartifact=org.junit.platform:junit-platform-console-standalone:$JUNIT_CONSOLE >/dev/null

rm -rf "$PACK"
mkdir -p "$PACK/lib"
# --compress=2 is zip (JDK 17 spells it so). java.logging and java.xml: JUnit's launcher logs through java.util.logging and writes XML reports;
# jdk.unsupported: JavaCPP uses sun.misc.Unsafe.
"$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,java.xml,jdk.unsupported \
    --strip-debug --no-man-pages --compress=2 --output "$PACK/jre"

cp -r target/classes "$PACK/classes"
rm -rf "$PACK/classes/io/skipgpt/tensor/linux-x86_64"
cp -r target/test-classes "$PACK/test-classes"
cp -r target/jni "$PACK/jni"
for jar in org/bytedeco/javacpp/$JAVACPP/javacpp-$JAVACPP.jar \
           org/bytedeco/javacpp/$JAVACPP/javacpp-$JAVACPP-linux-x86_64.jar \
           org/bytedeco/cuda/$CUDA_PRESETS/cuda-$CUDA_PRESETS.jar \
           org/bytedeco/cuda/$CUDA_PRESETS/cuda-$CUDA_PRESETS-linux-x86_64.jar \
           com/google/code/gson/gson/$GSON/gson-$GSON.jar \
           org/junit/platform/junit-platform-console-standalone/$JUNIT_CONSOLE/junit-platform-console-standalone-$JUNIT_CONSOLE.jar; do
    cp "$M2/$jar" "$PACK/lib/"
done
git rev-parse HEAD >"$PACK/commit.txt"
[[ -z $(git status --porcelain --untracked-files=no) ]] || echo "(with uncommitted changes)" >>"$PACK/commit.txt"

size=$(du -sm "$PACK" | cut -f1)
echo "packed $PACK: ${size} MiB (jre $(du -sm "$PACK/jre" | cut -f1), lib $(du -sm "$PACK/lib" | cut -f1))"
if ((size > 56)); then
    echo "the pack is over 56 MiB: it would not travel to the GPU machine with the sources" >&2
    exit 1
fi
