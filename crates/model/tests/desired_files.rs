#[test]
fn explore() {
    let cases: &[(&str, &str)] = &[
        ("order", "foo: 1\nversion: 1\n"),
        ("detector null", "version: 1\ntargets:\n  - region: us-east-1\ndetector:\n"),
        ("redeploy null", "version: 1\ntargets:\n  - region: us-east-1\nredeploy:\n"),
        ("clusters null", "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n"),
        ("two docs", "version: 1\ntargets:\n  - region: us-east-1\n---\nfoo: bar\n"),
        ("target unknown", "version: 1\ntargets:\n  - region: us-east-1\n    rolearn: x\n"),
        ("unquoted time", "version: 1\ntargets:\n  - region: us-east-1\nredeploy:\n  windows:\n    - days: [mon]\n      start: 09:00\n      end: 16:00\n"),
        ("flow", "{version: 1, targets: [{region: us-east-1}]}"),
        ("json", "{\"version\": 1, \"targets\": [{\"region\": \"us-east-1\"}], \"safety\": {\"maxCoverageLossFraction\": 0.2}}"),
        ("frac int", "version: 1\ntargets:\n  - region: us-east-1\nsafety:\n  maxCoverageLossFraction: 1\n"),
        ("frac str", "version: 1\ntargets:\n  - region: us-east-1\nsafety:\n  maxCoverageLossFraction: lots\n"),
        ("bom", "\u{feff}version: 1\ntargets:\n  - region: us-east-1\n"),
        ("crlf", "version: 1\r\ntargets:\r\n  - region: us-east-1\r\nfoo: 1\r\n"),
        ("just dashes", "---\n...\n"),
        ("scalar top", "hello\n"),
        ("dup nested", "version: 1\ntargets:\n  - region: us-east-1\n    region: us-east-2\n"),
        ("name empty", "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - name: \"\"\n    guardDutyManaged: true\n"),
        ("neither", "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - guardDutyManaged: true\n"),
        ("select on gdm", "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - match:\n      tags: {GuardDutyManaged: \"true\"}\n    guardDutyManaged: false\n"),
        ("gdm null", "version: 1\ntargets:\n  - region: us-east-1\nclusters:\n  - name: a\n    guardDutyManaged:\n"),
        ("version missing only", "targets:\n  - region: us-east-1\n"),
        ("indented root", "  version: 1\n  targets:\n    - region: us-east-1\n  foo: 2\n"),
        ("window same", "version: 1\ntargets:\n  - region: us-east-1\nredeploy:\n  windows:\n    - days: []\n      start: \"10:00\"\n      end: \"10:00\"\n"),
    ];
    for (label, text) in cases {
        match gec_model::desired::parse("f.yaml", text) {
            Ok(d) => println!("== {label}: OK {:?}", d.clusters),
            Err(e) => {
                println!("== {label}:");
                for x in &e.errors { println!("   {}:{} [{}] {}", x.line, x.column, x.path, x.message); }
            }
        }
    }
}
