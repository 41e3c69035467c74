using LrmNative.Cli;

namespace LrmNative.Tests;

/// <summary>
/// docs/cli.md is what `lrm reference` generates from the command tree, so the reference names every command and option
/// the tool has, with the tool's own descriptions and defaults; a new or renamed option without a regenerated file fails here.
/// </summary>
public sealed class CliReferenceTests
{
    [Test]
    public void TheCommittedReferenceIsTheGeneratedOne()
    {
        var committedPath = TestFiles.InRepository(CliReference.RepositoryPath, "compare");
        var generated = CliReference.Generate(Cli.Program.CreateRoot());
        var committed = File.ReadAllText(committedPath);
        Assert.That(committed, Is.EqualTo(generated), $"{CliReference.RepositoryPath} is stale: run ./lrm reference --out {CliReference.RepositoryPath}");
    }

    [Test]
    public void EveryVisibleOptionOfEveryCommandIsInTheReference()
    {
        var root = Cli.Program.CreateRoot();
        var text = CliReference.Generate(root);
        var commands = 0;
        void Visit(System.CommandLine.Command command, string path)
        {
            foreach (var child in command.Subcommands.Where(c => !c.Hidden))
            {
                var name = $"{path} {child.Name}".Trim();
                if (child.Options.Count > 0 || child.Arguments.Count > 0)
                {
                    commands++;
                    var heading = new[] { $"### `lrm {name}`", $"### `lrm {name} " }.Select(h => text.IndexOf(h, StringComparison.Ordinal)).Max();
                    Assert.That(heading, Is.GreaterThanOrEqualTo(0), $"lrm {name} has a section");
                    var end = text.IndexOf("\n### ", heading + 1, StringComparison.Ordinal);
                    var section = text[heading..(end < 0 ? text.Length : end)];
                    foreach (var option in child.Options.Where(o => !o.Hidden && o.Name.StartsWith("--", StringComparison.Ordinal) && o.Name != "--help"))
                    {
                        Assert.That(section, Does.Contain($"`{option.Name}`"), $"lrm {name} {option.Name}");
                    }
                }
                Visit(child, name);
            }
        }
        Visit(root, "");
        Assert.That(commands, Is.GreaterThanOrEqualTo(12), "reconstruct, convert, mesh, dataset ×3, eval ×3, showcase, bench, train, …");
        Assert.That(text, Does.Not.Contain("### `lrm reference"), "the hidden generator command is left out");
    }
}
