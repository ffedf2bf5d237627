#!/usr/bin/env bash
# Checks the C sources against .clang-format (clang-format 14, Debian's clang-format):
# every tracked *.c and *.h must come out of clang-format unchanged, except the files
# listed in .ci/format-exempt.txt, which predate the check. Nothing is rewritten.
#
# To take a file off the list: clang-format -i FILE in a commit of its own (no other
# change, so review reads it as formatting only), then delete its line. A file on the
# list that already conforms is named at the end, to be taken off.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format)

declare -A exempt=()
while read -r f; do
	[[ -z $f || $f == \#* ]] || exempt[$f]=1
done <.ci/format-exempt.txt

checked=()
conforming_exempt=()
while read -r f; do
	if [[ -n ${exempt[$f]:-} ]]; then
		"$fmt" --dry-run -Werror "$f" >/dev/null 2>&1 && conforming_exempt+=("$f")
		continue
	fi
	checked+=("$f")
done < <(git ls-files '*.c' '*.h')

rc=0
"$fmt" --dry-run -Werror "${checked[@]}" || rc=$?
if ((rc)); then
	echo "format-check: the files above differ from .clang-format: clang-format -i FILE" >&2
fi
if ((${#conforming_exempt[@]})); then
	echo "format-check: these conform now, take them off .ci/format-exempt.txt:" \
		"${conforming_exempt[*]}" >&2
fi
echo "format-check: ${#checked[@]} files checked, ${#exempt[@]} exempt" >&2
exit "$rc"
