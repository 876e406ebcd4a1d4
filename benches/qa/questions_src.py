# Source data for questions.jsonl: (source, kind, question, answers, evidence)
A = []
def q(source, kind, question, answers, evidence):
    A.append(dict(source=source, kind=kind, question=question, answers=answers, evidence=evidence))

S = "debian-constitution.txt"
q(S, "how_long", "How long do Debian developers normally have to cast their ballots on a general resolution?",
  ["2 weeks", "two weeks", "14 days"],
  "The voting period is 2 weeks, but may be varied by up to 1 week by the Project Leader.")
q(S, "how_many", "What is the largest number of people that can sit on Debian's Technical Committee?",
  ["eight", "8 developers", "8 members", "up to 8", "8 people"],
  "The Technical Committee consists of up to 8 Developers, and should usually have at least 4 members.")
q(S, "how_long", "Once elected, how long does a Debian Project Leader stay in office?",
  ["one year", "1 year", "12 months", "a year"],
  "The Project Leader serves for one year from their election.")
q(S, "how_long", "If someone has just left the tech committee, how long must they wait before they can be put back on it?",
  ["12 months", "twelve months", "one year", "1 year", "a year"],
  "A Developer is not eligible to be (re)appointed to the Technical Committee if they have been a member within the previous 12 months.")
q(S, "how_long", "After the discussion on a general resolution closes, what's the deadline for the secretary to open the vote?",
  ["seven days", "7 days", "one week", "1 week", "a week"],
  "The Project Secretary may do this immediately following the end of the discussion period and must do so within seven days of the end of the discussion period.")
q(S, "what", "What size of majority do developers need to change Debian's constitution?",
  ["3:1", "three to one", "three-to-one"],
  "Amend this constitution, provided they agree with a 3:1 majority.")
q(S, "when", "How far ahead of the end of the current leader's term does the DPL election get going?",
  ["six weeks", "6 weeks"],
  "The election begins six weeks before the leadership post becomes vacant, or (if it is too late already) immediately.")
q(S, "who", "If Debian has no project secretary available and nothing was delegated, who can take the secretary's decisions?",
  ["Chair of the Technical Committee", "Technical Committee Chair", "Technical Committee's Chair", "Acting Secretary"],
  "If there is no Project Secretary or the current Secretary is unavailable and has not delegated authority for a decision then the decision may be made or delegated by the Chair of the Technical Committee, as Acting Secretary.")
q(S, "when", "When was the very first version of the Debian constitution ratified?",
  ["December 2nd, 1998", "December 2, 1998", "2 December 1998", "1998-12-02", "Dec 2, 1998"],
  "Version 1.0 ratified on December 2nd, 1998.")

S = "debian-social-contract.txt"
q(S, "when", "When was the current revision of the Debian Social Contract adopted?",
  ["October 1st, 2022", "October 1, 2022", "1 October 2022", "2022-10-01", "Oct 1, 2022"],
  "Version 1.2 ratified on October 1st, 2022.")
q(S, "who", "Who wrote the original draft of Debian's social contract?",
  ["Bruce Perens"],
  "This document was drafted by Bruce Perens, refined by the other Debian developers during a month-long e-mail conference in June 1997, and then accepted as the publicly stated policy of the Debian Project.")
q(S, "who", "Who first came up with the idea that Debian should publish a social contract?",
  ["Ean Schuessler", "Schuessler"],
  'The concept of stating our "social contract with the free software community" was suggested by Ean Schuessler.')
q(S, "where", "Where in its archive does Debian put software that fails its free software guidelines?",
  ["contrib", "non-free"],
  'We have created "contrib" and "non-free" areas in our archive for these works.')

S = "debian-mailing-lists.txt"
q(S, "what", "What mail-handling software runs the Debian mailing lists?",
  ["SmartList"],
  "All original Debian mailing lists run on a special server, using an automatic mail processing software called SmartList.")
q(S, "where", "I need to reach an actual person who manages the Debian lists. What address do I write to?",
  ["listmaster@lists.debian.org"],
  "If you need to contact a human listmaster, direct your mail to listmaster@lists.debian.org .")
q(S, "where", "Where should I send a job ad aimed at the Debian community if it has to stay confidential?",
  ["leader@debian.org"],
  "job postings which have to be kept private should be sent to leader@debian.org who will distribute them.")
q(S, "what", "To subscribe to a Debian list, what suffix goes after the list name in the address I mail?",
  ["-request"],
  "Please remember the -REQUEST part of the address.")

S = "debian-bug-reporting.txt"
q(S, "what", "Which program does Debian recommend for filing bug reports?",
  ["reportbug"],
  "We strongly recommend that you report bugs in Debian using the reportbug program.")
q(S, "what", "How do I get the bug tracker to send a copy of my new report to another mailing list as well?",
  ["X-Debbugs-CC"],
  "The right way to do this is to use the X-Debbugs-CC pseudo-header.")
q(S, "where", "I'm reporting a tiny spelling mistake in some docs. Which bugs.debian.org address keeps it off the busy bug lists?",
  ["maintonly@bugs.debian.org", "maintonly"],
  "If a bug report is minor, for example, a documentation typo or a trivial build problem, please adjust the severity appropriately and send it to maintonly@bugs.debian.org instead of submit@bugs.debian.org.")
q(S, "what", "How can I stop the Debian BTS from mailing me a confirmation when I submit a bug?",
  ["X-Debbugs-No-Ack"],
  "If you want to suppress this acknowledgement, include an X-Debbugs-No-Ack header or pseudoheader in your e-mail (the contents of this header do not matter).")
q(S, "where", "The maintainer already knows about my bug; which address just records it in the tracker without forwarding it to anyone?",
  ["quiet@bugs.debian.org"],
  "Bugs sent to quiet@bugs.debian.org will not be forwarded anywhere, only filed.")

S = "debian-bug-control-server.txt"
q(S, "where", "Which e-mail address accepts commands that change the state of Debian bug reports?",
  ["control@bugs.debian.org"],
  "Just as request@bugs.debian.org allows the retrieval of bug data and documentation by email, control@bugs.debian.org allows bug reports to be manipulated in various ways.")
q(S, "what", "One bug report really covers several distinct problems. Which BTS command makes copies of it so each can be tracked on its own?",
  ["clone"],
  "The clone control command allows you to duplicate a bug report.")

S = "debian-copyright-format-1.0.txt"
q(S, "what", "Under which proposal name was the machine-readable debian/copyright format first drafted?",
  ["DEP-5", "DEP5", "DEP 5"],
  "This specification was originally drafted as DEP-5.")
q(S, "how_many", "What is the smallest number of stanzas a valid machine-readable debian/copyright file can have?",
  ["two", "2 stanzas", "2 or more"],
  "The file consists of two or more stanzas.")
q(S, "what", "In a Files: pattern of debian/copyright, what does a question mark match?",
  ["single character", "one character", "exactly one character"],
  "Only the wildcards * and ? apply; the former matches any number of characters (including none), the latter a single character.")
q(S, "how_many", "How many kinds of field values does the copyright format specification distinguish?",
  ["four", "4 types", "4 kinds"],
  "There are four types of fields.")

S = "debian-autopkgtest.md"
q(S, "what", "Which shell is used to run an autopkgtest Test-Command?",
  ["bash -e", "bash"],
  "It will be run under `bash -e`.")
q(S, "what", "Which restriction should I declare when my package test has to run with superuser rights?",
  ["needs-root"],
  "**needs-root** The test script must be run as root.")
q(S, "what", "Which environment variable points an autopkgtest at its own scratch directory?",
  ["AUTOPKGTEST_TMP"],
  "During execution of the test, the environment variable `$AUTOPKGTEST_TMP` will point to a directory for the execution of this particular test, which starts empty and will be deleted afterwards (so there is no need for the test to clean up files left there).")
q(S, "when", "From which dpkg-source version on is the Testsuite header added to source packages automatically?",
  ["1.17.11"],
  "This tag is added automatically by dpkg-source version 1.17.11 or later.")
q(S, "what", "What command should a test call, instead of plain reboot, when it needs to restart the testbed?",
  ["autopkgtest-reboot"],
  "Some testbeds support rebooting; for those, the testbed will have an `autopkgtest-reboot` command which tests can call to cause a reboot.")

S = "filesystem-hierarchy-standard-3.0.pdf"
q(S, "where", "According to the filesystem standard, where do daemon PID files belong?",
  ["/run"],
  "Process identifier (PID) files, which were originally placed in /etc, must be placed in /run.")
q(S, "what", "What naming scheme is required for serial device lock files?",
  ["LCK.."],
  'The naming convention which must be used is "LCK.." followed by the base name of the device.')
q(S, "how_many", "In the lock-file format the FHS mandates, how many bytes are used to write the process ID?",
  ["ten byte", "10 byte", "10-byte", "ten-byte"],
  "The HDB format is to store the process identifier (PID) as a ten byte ASCII decimal number, with a trailing newline.")
q(S, "when", "When was version 3.0 of the Filesystem Hierarchy Standard published?",
  ["March 19, 2015", "19 March 2015", "2015-03-19", "March 19th, 2015"],
  "Publication date March 19, 2015")
q(S, "where", "Which directory should programs use for temporary files that have to survive a reboot?",
  ["/var/tmp"],
  "The /var/tmp directory is made available for programs that require temporary files or directories that are preserved between system reboots.")
q(S, "where", "According to the FHS, in which directories may the kernel image be installed?",
  ["/boot"],
  "The operating system kernel must be located in either / or /boot.")

S = "debian-policy-control-fields.html"
q(S, "how_many", "What is the minimum length of a Debian package name?",
  ["two characters", "2 characters", "two", "at least 2"],
  "They must be at least two characters long and must start with an alphanumeric character.")
q(S, "what", "Which character encoding are Debian control files required to use?",
  ["UTF-8", "utf8"],
  "All control files must be encoded in UTF-8.")
q(S, "what", "How do I get an empty line to show up in a package's long description?",
  ["full stop", "period", "single dot", "a dot"],
  "Those containing a single space followed by a single full stop character. These are rendered as blank lines.")

S = "debian-policy-binary-packages.html"
q(S, "what", "If I move crude jokes that might upset people into a separate package, how should its name be marked?",
  ["-offensive"],
  "If you split out (potentially) offensive or disturbing material into a separate package, you should usually mark this in the package name by adding -offensive.")
q(S, "how_many", "At most how long should a package's one-line summary be?",
  ["80 characters", "80"],
  "The single line synopsis should be kept brief\u2014certainly under 80 characters.")
q(S, "who", "Who is listed as the maintainer of a package that nobody looks after any more?",
  ["Debian QA Group", "QA Group", "packages@qa.debian.org"],
  "Orphaned packages should have their Maintainer control field set to Debian QA Group <packages@qa.debian.org>.")
q(S, "what", "How should a date be written inside an upstream version number so that versions sort correctly?",
  ["four-digit year first", "year first", "yyyymmdd", "year, then month"],
  "To prevent having to use epochs for every new upstream version, the date-based portion of any upstream version number should be given in a way that sorts correctly: four-digit year first, followed by a two-digit numeric month, followed by a two-digit numeric date, possibly with punctuation between the components.")

S = "developers-reference-duties.html"
q(S, "how_long", "How long can I sit on a release-critical bug in my package before I should say so in the report and ask for help?",
  ["2 weeks", "two weeks", "14 days"],
  "If, for any reason, you aren't able fix an RC bug in a package of yours within 2 weeks (for example due to time constraints, or because it's difficult to fix), you should mention it clearly in the bug report and you should tag the bug help to invite other volunteers to chime in.")
q(S, "how_long", "How often are key updates sent to keyring.debian.org actually applied?",
  ["once a month", "monthly", "every month"],
  "Updates are processed at least once a month by the debian-keyring package maintainers.")
q(S, "where", "On which mailing list are Debian general resolution proposals first debated?",
  ["debian-vote"],
  "Each proposal is first discussed on the debian-vote@lists.debian.org mailing list and it requires several endorsements before the project secretary starts the voting procedure.")
q(S, "what", "What tag goes in the subject line when I tell the other developers I'll be away on holiday?",
  ["[VAC]", "VAC tag"],
  "First send a mail to debian-private@lists.debian.org with [VAC] prepended to the subject of your message")
q(S, "who", "Who do I contact if I get stuck starting my own retirement process as a Debian member?",
  ["nm@debian.org", "NM front desk", "front desk"],
  "In the case you run into problems opening the retirement process yourself, contact NM front desk using nm@debian.org")

S = "developers-reference-packages.html"
q(S, "how_long", "For an ordinary non-maintainer upload, how long a delay is recommended?",
  ["10 days", "ten days"],
  "Other NMUs: 10 days")
q(S, "how_long", "What is the longest delay I can pick when uploading to the DELAYED queue?",
  ["15 days", "15-day", "15"],
  "This is done through automatic uploading to ftp.upload.debian.org in upload-directory DELAYED/X-day (X between 0 and 15).")
q(S, "how_long", "After I file an intent-to-salvage bug, how long do the current maintainers have to object?",
  ["21 days", "three weeks", "3 weeks"],
  "the maintainer, any current uploader or any member of the associated packaging team of the package in question may object publicly in response to the bug you've filed within 21 days, and this terminates the salvaging process.")
q(S, "how_long", "When salvaging a package with no response from its maintainer, what minimum delay must the upload use?",
  ["seven days", "7 days", "one week", "a week"],
  "After the 21 days delay, if no answer has been sent to the bug from the maintainer, one of the uploaders or team, you may upload the new release of the package into the DELAYED queue with a minimum delay of seven days.")
q(S, "what", "What severity should an ITP bug for a new package get?",
  ["wishlist"],
  "The severity of the bug report must be set to wishlist.")
q(S, "who", "Who should I e-mail when I discover a security hole in a Debian package?",
  ["team@security.debian.org", "security team"],
  "When you become aware of a security-related bug in a Debian package, whether or not you are the maintainer, collect pertinent information about the problem, and promptly contact the security team by emailing team@security.debian.org.")
q(S, "what", "What does an RFA bug title in WNPP mean?",
  ["Request For Adoption"],
  "RFA stands for Request For Adoption.")

S = "debian-faq.pdf"
q(S, "when", "In what year was the Debian project started?",
  ["1993"],
  "The Debian Project was created by Ian Murdock in 1993, initially under the sponsorship of the Free Software Foundation\u2019s GNU project.")
q(S, "what", "Where do the code names of Debian releases come from?",
  ["Toy Story"],
  'So far they have been characters taken from the "Toy Story" movies by Pixar.')
q(S, "who", "Who decided that Debian releases would be named after characters from the Pixar films?",
  ["Bruce Perens", "Perens"],
  "by Bruce Perens who was, at the time, the Debian Project Leader and was working also at Pixar, the company that produced the movies.")
q(S, "how_many", "According to the FAQ, on how many hardware architectures does Debian stable run?",
  ["9 architectures", "nine architectures", "nine"],
  "and runs on 9 architectures")
q(S, "what", "Which two first names were combined to form the word Debian?",
  ["Debra and Ian", "Debra"],
  "This word is a contraction of the names of Debra and Ian Murdock, who founded the project.")

S = "popularity-contest-faq.txt"
q(S, "how_long", "How long does the popcon server hold on to a machine's report?",
  ["20 days", "twenty days"],
  "The server automatically extracts the report from the email or HTTP and stores it in a database for a maximum of 20 days or until the host sends a new report.")
q(S, "how_long", "To protect privacy, how coarsely are file access times rounded in popcon reports?",
  ["twelve hours", "12 hours"],
  "For privacy reasons, the times are truncated to multiple of twelve hours.")
q(S, "how_long", "How recently must a package's program have been used for it to count as a popcon vote?",
  ["thirty days", "30 days"],
  "A computer 'vote's for a package if according to the data provided in the report, a program provided or depending on the package was used less than thirty days ago.")
q(S, "who", "Who is allowed to read the popcon database holding individual submissions?",
  ["Debian Developers"],
  "This database is readable only by Debian Developers.")
q(S, "what", "How do I keep the name of a privately built package out of popcon reports?",
  ["XB-Popcon-Reports"],
  'add "XB-Popcon-Reports: no" to debian/control of the generated package.')

S = "openssh-client-readme-debian.txt"
q(S, "what", "Key-based ssh logins fail because my home directory is writable by my group. What command fixes it?",
  ["chmod g-w"],
  "Run this command, as yourself: chmod g-w ~/ to remove group write permissions.")
q(S, "what", "Which port does the ssh.socket unit shipped in Debian listen on?",
  ["22"],
  "The provided ssh.socket unit file sets ListenStream=22.")
q(S, "when", "From which Debian package version on do fresh OpenSSH installs block password logins for root?",
  ["6.6p1-1", "6.6p1"],
  'As of 1:6.6p1-1, new installations will be set to "PermitRootLogin without-password" (or the synonymous "PermitRootLogin prohibit-password" as of 1:7.1p1-1).')
q(S, "what", "What configuration line brings back upstream OpenSSH's QoS marking on Debian?",
  ["af21 cs1"],
  "If you want to restore the upstream default, add this to ssh_config and sshd_config: IPQoS af21 cs1")

S = "git-protocol-v2.txt"
q(S, "what", "In git protocol v2, what is the special packet 0001 used for?",
  ["delimiter", "delim-pkt", "separates sections"],
  "'0001' Delimiter Packet (delim-pkt) - separates sections of a message")
q(S, "what", "When talking to a git server over HTTP, which request header asks for protocol version 2?",
  ["Git-Protocol"],
  'When using the http:// or https:// transport a client makes a "smart" info/refs request as described in linkgit:gitprotocol-http[5] and requests that v2 be used by supplying "version=2" in the `Git-Protocol` header.')
q(S, "what", "Over ssh, how does a git client signal that it wants protocol v2?",
  ["GIT_PROTOCOL"],
  'When using either the ssh:// or file:// transport, the GIT_PROTOCOL environment variable must be set explicitly to include "version=2".')
q(S, "how_many", "How many commands can a protocol v2 client ask for in one request?",
  ["single command", "one command", "only one", "one at a time"],
  "Only a single command can be requested at a time.")

S = "git-pack-format.txt"
q(S, "what", "Which pack file version numbers will Git accept when reading?",
  ["2 or 3", "2 and 3", "versions 2 and 3"],
  "Git currently accepts version number 2 or 3 but generates version 2 only.")
q(S, "what", "In a git delta copy instruction, what does a size of zero actually mean?",
  ["0x10000", "65536"],
  "There is another exception: size zero is automatically converted to 0x10000.")
q(S, "how_many", "How many entries does the first-level fan-out table of a pack index have?",
  ["256"],
  "The header consists of 256 4-byte network byte order integers.")
q(S, "what", "What magic number identifies a git .rev reverse-index file?",
  ["0x52494458", "RIDX"],
  "A 4-byte magic number '0x52494458' ('RIDX').")

S = "git-submitting-patches.txt"
q(S, "how_many", "What's the soft length limit for the first line of a Git commit message?",
  ["50 characters", "50"],
  "The first line of the commit message should be a short description (50 characters is the soft limit, see DISCUSSION in linkgit:git-commit[1]), and should skip the full stop.")
q(S, "who", "Who maintains the git-gui part of Git?",
  ["Pratyush Yadav"],
  "`git-gui/` comes from git-gui project, maintained by Pratyush Yadav:")
q(S, "who", "Who coordinates the translations of Git?",
  ["Jiang Xin"],
  "`po/` comes from the localization coordinator, Jiang Xin:")
q(S, "what", "What grammatical mood should I use when describing a change in a Git commit message?",
  ["imperative"],
  'Describe your changes in imperative mood, e.g. "make xyzzy do frotz"')

S = "git-embargoed-releases.txt"
q(S, "where", "Where should a suspected Git security vulnerability be reported?",
  ["git-security@googlegroups.com", "git-security"],
  "Responsible disclosures of vulnerabilities, analysis, proposed fixes as well as the orchestration of coordinated embargoed releases all happen on the `git-security` mailing list at <git-security@googlegroups.com>.")
q(S, "how_long", "How far in advance, at most, may the Linux distributions' private list be told about an upcoming Git security release?",
  ["two weeks", "2 weeks", "14 days"],
  "At most two weeks before release date, we need to send a notification to <distros@vs.openwall.org>, preferably less than 7 days before the release date.")
q(S, "when", "At what time of day does the Git maintainer publish a security release?",
  ["10am", "10 am", "10:00", "10 a.m."],
  "On the day of the release, at around 10am Pacific Time, the Git maintainer pushes the tag and the `master` branch to the public repository, then sends out an announcement mail.")
q(S, "how_many", "Roughly how many people are subscribed to Git's private security list?",
  ["few dozen"],
  "There are a few dozen subscribed members: core Git developers who are trusted with addressing vulnerabilities, and stakeholders (i.e. owners of products affected by security vulnerabilities in Git).")
q(S, "who", "Who creates the version tags for an embargoed Git release?",
  ["Git maintainer"],
  "The tags are created by the Git maintainer and pushed to the same repository.")
q(S, "how_long", "For how long may the exploit details be held back from the oss-security announcement?",
  ["7 days", "seven days"],
  "Technically, describing any exploit can be delayed up to 7 days, but we usually refrain from doing that, including it right away.")

S = "sqlite-file-format.html"
q(S, "how_many", "How many bytes make up the header at the start of an SQLite database file?",
  ["100 bytes", "100"],
  "The first 100 bytes of the database file comprise the database file header.")
q(S, "what", "What text does every SQLite database file start with?",
  ["SQLite format 3"],
  'This byte sequence corresponds to the UTF-8 string "SQLite format 3" including the nul terminator character at the end.')
q(S, "where", "Where in an SQLite database file is the lock-byte page located?",
  ["1073741824"],
  "The lock-byte page is the single page of the database file that contains the bytes at offsets between 1073741824 and 1073742335, inclusive.")
q(S, "how_many", "What is the smallest possible size of an SQLite database?",
  ["512-byte", "512 bytes", "512"],
  "The minimum size SQLite database is a single 512-byte page.")
q(S, "where", "At which byte offset of the SQLite header is the page size stored?",
  ["offset 16", "16"],
  "The two-byte value beginning at offset 16 determines the page size of the database.")

S = "sqlite-limits.html"
q(S, "how_many", "By default, how many columns can an SQLite table have?",
  ["2000", "2,000"],
  "The default setting for SQLITE_MAX_COLUMN is 2000.")
q(S, "how_many", "How many tables can a single SQLite join involve at most?",
  ["64"],
  "SQLite does not support joins containing more than 64 tables.")
q(S, "how_many", "Even if I recompile, what is the upper bound on databases attached to one SQLite connection?",
  ["125"],
  "The maximum number of attached databases cannot be increased above 125.")
q(S, "how_many", "What's the default maximum size of a string or BLOB in SQLite?",
  ["1 billion", "1,000,000,000", "one billion", "1000000000"],
  "The default value of this macro is 1 billion (1 thousand million or 1,000,000,000).")
q(S, "how_many", "By default, how many parts can a compound SELECT in SQLite be made of?",
  ["500"],
  "The maximum number of terms is SQLITE_MAX_COMPOUND_SELECT which defaults to 500.")

S = "sqlite-write-ahead-log.html"
q(S, "how_many", "How big does the WAL file get before SQLite checkpoints it on its own, by default?",
  ["1000 pages", "1,000 pages", "1000"],
  "By default, SQLite does a checkpoint automatically when the WAL file reaches a threshold size of 1000 pages.")
q(S, "when", "Which SQLite release first offered write-ahead logging?",
  ["3.7.0"],
  'Beginning with version 3.7.0 (2010-07-21), a new "Write-Ahead Log" option (hereafter referred to as "WAL") is available.')
q(S, "what", "Besides the -wal file, what other extra file shows up next to a database in WAL mode?",
  ["-shm", "shm"],
  'There is an additional quasi-persistent "-wal" file and "-shm" shared memory file associated with each database, which can make SQLite less appealing for use as an application file-format.')

S = "sqlite-code-of-ethics.html"
q(S, "what", "Which centuries-old text is SQLite's code of ethics taken from?",
  ["Rule of St. Benedict", "St. Benedict", "Saint Benedict", "Rule of Saint Benedict"],
  'in accordance with the "instruments of good works" from chapter 4 of The Rule of St. Benedict')
q(S, "what", "What was SQLite's code of ethics called when it was first written?",
  ["Code of Conduct"],
  'This document was originally called a "Code of Conduct" and was created for the purpose of filling in a box on "supplier registration" forms submitted to the SQLite developers by some clients.')

S = "sqlite-consortium-agreement.html"
q(S, "how_many", "How much does a member company have to pay Hwaci each year under the SQLite consortium agreement?",
  ["$75,000", "75,000", "75000", "75k"],
  "Company shall pay Hwaci at least US $75,000 per year in advance either annually, quarterly, or monthly, at Company's discretion.")
q(S, "how_many", "How many hours a year of custom development does a consortium member get?",
  ["220 hours", "220"],
  "The time devoted to Custom Development for Company is limited 220 hours per year.")
q(S, "how_many", "What is the yearly cap on debugging help and custom development put together?",
  ["330 hours", "330"],
  "The combined time for Debugging Support and Custom Development for Company is limited to 330 hours per year.")
q(S, "how_long", "What is the initial term of the SQLite consortium agreement?",
  ["12 months", "twelve months", "one year", "1 year"],
  "This Agreement will commence on the Effective Date and will continue until 12 months after the Effective Date.")
q(S, "how_long", "Once written notice of a material default is given, how long does the other party have to put it right before the agreement can be terminated?",
  ["30 days", "thirty days"],
  "If either party materially defaults in the performance of any of its material obligations hereunder and if any such default is not corrected within 30 days after notice in writing, then the non-defaulting party, at its option, may, in addition to any other remedies it may have, thereupon terminate this Agreement by giving written notice of termination to the defaulting party.")
q(S, "where", "Which state's law governs the SQLite consortium agreement?",
  ["North Carolina"],
  "This Agreement will be interpreted and construed in accordance with the laws of the State of North Carolina and the United States of America, without regard to conflict of law principles.")
q(S, "how_many", "How far away from the main repository must Hwaci keep its backup copies of SQLite?",
  ["400 kilometers", "400 km", "400"],
  "Hwaci shall maintain backup copies of all SQLite source files and documentation, current and historical, at at least two separate locations separated from each other and from the primary on-line SQLite repository by at least 400 kilometers.")
q(S, "when", "Under the consortium agreement, when is a notice sent by post treated as given?",
  ["three business days", "3 business days"],
  "Notices will be considered to have been given at the time of actual delivery in person, three business days after deposit in the mail as set forth above, or one day after delivery to an overnight air courier service.")

S = "sqlite-copyright-release.pdf"
q(S, "what", "How does the SQLite contributor copyright release treat precompiled binaries?",
  ["excluded", "not included", "not covered"],
  'Precompiled binaries are excluded from the definition of "SQLite software" in this document because the process of compiling the software may introduce information from outside sources which is not properly a part of SQLite.')
q(S, "what", "What does someone signing the SQLite copyright release promise never to do with other people's code?",
  ["copy and paste", "copy-and-paste"],
  "I agree never to copy and paste code into the SQLite code base from other sources.")

S = "postgresql-autovacuum-settings.html"
q(S, "how_many", "By default, how many autovacuum worker processes may run at the same time?",
  ["three", "3 worker", "3 process", "3 autovacuum", "is 3"],
  "Specifies the maximum number of autovacuum processes (other than the autovacuum launcher) that may be running at any one time. The default is three.")
q(S, "how_long", "What is the default pause between autovacuum runs on a given database?",
  ["one minute", "1 minute", "1min", "60 seconds", "60s"],
  "If this value is specified without units, it is taken as seconds. The default is one minute (1min).")
q(S, "how_many", "At what transaction age does PostgreSQL force a vacuum to avoid transaction ID wraparound, by default?",
  ["200 million", "200,000,000", "200000000"],
  "Vacuum also allows removal of old files from the pg_xact subdirectory, which is why the default is a relatively low 200 million transactions.")
q(S, "how_many", "By default, how many newly inserted rows does it take to trigger an insert-driven vacuum of a table?",
  ["1000", "1,000"],
  "The default is 1000 tuples. If -1 is specified, autovacuum will not trigger a VACUUM operation on any tables based on the number of inserts.")

S = "postgresql-limits.html"
q(S, "how_many", "What's the maximum length of an identifier such as a table name in PostgreSQL?",
  ["63 bytes", "63"],
  "identifier length 63 bytes can be increased by recompiling PostgreSQL")
q(S, "how_many", "How many columns can a PostgreSQL table have at most?",
  ["1,600", "1600"],
  "columns per table 1,600")
q(S, "how_many", "What's the biggest a single field value can be in PostgreSQL?",
  ["1 GB", "1GB", "one gigabyte", "1 gigabyte"],
  "field size 1 GB")
q(S, "how_many", "How many columns can one PostgreSQL index cover?",
  ["32"],
  "columns per index 32 can be increased by recompiling PostgreSQL")

S = "postgresql-pg-hba-conf.html"
q(S, "what", "What does HBA stand for in pg_hba.conf?",
  ["host-based authentication", "host based authentication"],
  "(HBA stands for host-based authentication.)")
q(S, "what", "After changing pg_hba.conf on a running server, how do I make it take effect?",
  ["pg_ctl reload", "pg_reload_conf", "SIGHUP", "kill -HUP"],
  "If you edit the file on an active system, you will need to signal the postmaster (using pg_ctl reload, calling the SQL function pg_reload_conf(), or using kill -HUP) to make it re-read the file.")
q(S, "what", "What happens to a connection attempt when no line in pg_hba.conf matches it?",
  ["access is denied", "denied", "rejected"],
  "If no record matches, access is denied.")

# Unanswerable: (doc_kind, kind, question, probes)
U = []
def u(doc_kind, kind, question, probes):
    U.append(dict(doc_kind=doc_kind, kind=kind, question=question, probes=probes))

u("legal", "how_many", "How much is the Debian Project Leader paid per year?",
  [r"salary", r"stipend", r"leader.{0,60}\bpaid\b", r"\bpaid\b.{0,60}leader"])
u("legal", "what", "What telephone number do SQLite consortium members call for round-the-clock support?",
  [r"\(\d{3}\)\s?\d{3}-\d{4}", r"\b\d{3}[-.]\d{3}[-.]\d{4}\b", r"\+1[\s-]?\d{3}", r"phone number", r"telephone number"])
u("legal", "what", "What financial penalty does Hwaci owe if it leaks a member's confidential information?",
  [r"liquidated", r"penalt"])
u("legal", "how_long", "How much notice must a company give to leave the SQLite consortium agreement early when Hwaci has not breached it?",
  [r"without cause", r"for convenience", r"terminat\w*.{0,60}any reason"])
u("spec", "what", "Which TCP port does the git:// daemon protocol use by default?",
  [r"9418"])
u("manual", "what", "What TCP port does a PostgreSQL 15 server listen on by default?",
  [r"\b5432\b"])
u("manual", "what", "What is the default setting of autovacuum_work_mem?",
  [r"autovacuum_work_mem"])
u("manual", "how_long", "How long does SQLite wait on a locked database before giving up with SQLITE_BUSY by default?",
  [r"busy.?timeout", r"SQLITE_BUSY.{0,100}\b\d+ ?(ms|milliseconds?|seconds?)\b"])
u("manual", "what", "Which ciphers does Debian's OpenSSH client prefer by default?",
  [r"chacha20", r"aes256", r"aes128", r"\bCiphers\b"])
u("manual", "how_long", "What ServerAliveInterval does Debian configure for outgoing ssh connections?",
  [r"ServerAliveInterval"])
u("legal", "how_long", "For how many years does Debian LTS keep supporting a release after its regular security support ends?",
  [r"(\bLTS\b|long.term support).{0,300}\b(\d+|two|three|four|five) (years?|months?)\b"])
u("spec", "how_many", "What is the maximum length of a single pkt-line in Git's wire protocol?",
  [r"65520", r"65516", r"LARGE_PACKET", r"pkt-line.{0,100}\b(maximum|max|at most)\b.{0,60}\d{3}"])
u("manual", "what", "What's the default value of Git's http.postBuffer setting?",
  [r"postBuffer"])
u("manual", "how_many", "What is the size limit for attachments sent to the Debian bug tracker?",
  [r"(attachment|message|mail|report)s?.{0,60}\b\d+ ?(KB|kB|MB|kilobytes?|megabytes?)\b", r"(attachment|bug report)s?.{0,60}size limit"])
u("legal", "who", "Who won the 2023 Debian Project Leader election?",
  [r"Jonathan Carter", r"Andreas Tille", r"Sam Hartman", r"Chris Lamb", r"elected.{0,60}2023", r"2023.{0,60}elect"])
u("spec", "how_many", "What minimum size does the FHS require for the root partition?",
  [r"root (file ?system|partition).{0,120}\b\d+ ?(MB|GB|megabytes?|gigabytes?)\b"])
u("manual", "what", "What is the default WAL segment size in PostgreSQL 15?",
  [r"wal_segment_size", r"\b16 ?MB\b", r"WAL segment"])
u("legal", "how_many", "What is the minimum age to become a Debian Developer?",
  [r"minimum age", r"years old", r"\bage (of|limit|requirement)\b.{0,30}\d"])
u("legal", "when", "When did Mozilla join the SQLite Consortium?",
  [r"Mozilla.{0,200}(consortium|agreement)", r"(consortium|agreement).{0,200}Mozilla"])
u("manual", "where", "In which data centre is the Debian popularity-contest server hosted?",
  [r"popcon.{0,100}hosted", r"hosted.{0,100}popcon", r"data ?cent(er|re)"])
u("spec", "how_many", "What is the maximum number of characters allowed in the Maintainer field of a Debian control file?",
  [r"Maintainer.{0,100}\b\d+ characters", r"\b\d+ characters.{0,100}Maintainer"])
u("manual", "who", "Who is the current Debian listmaster?",
  [r"listmasters? (is|are) [A-Z]", r"listmaster[^@]{0,20}\b(currently|now)\b"])
