using System.CommandLine;
using LrmNative.Cli;
using LrmProgram = LrmNative.Cli.Program;

namespace LrmNative.Tests;

/// <summary>`lrm`'s command tree as Program builds it: a mistyped option is a parse error, never a file name.</summary>
public sealed class CliConventionsTests
{
    [Test]
    public void AMistypedOptionIsAnErrorThatSuggestsTheNearestOption()
    {
        var result = LrmProgram.CreateRoot().Parse(["reconstruct", "photo.png", "--resolutoin", "64"]);
        Assert.That(result.Errors.Select(error => error.Message), Has.One.EqualTo(
            "unknown option '--resolutoin' for 'lrm reconstruct'; did you mean --resolution? ('lrm reconstruct --help' lists the options)"));
    }

    [Test]
    public void AnOptionWithNothingCloseIsNamedWithoutASuggestion()
    {
        var result = LrmProgram.CreateRoot().Parse(["eval", "images", "--bogus", "b"]);
        Assert.That(result.Errors.Select(error => error.Message), Has.Some.EqualTo(
            "unknown option '--bogus' for 'lrm eval images' ('lrm eval images --help' lists the options)"));
    }

    [Test]
    public void ValidCommandLinesParseWithoutErrors()
    {
        var root = LrmProgram.CreateRoot();
        Assert.That(root.Parse(["reconstruct", "a.png", "b.jpg", "--resolution", "64", "--out", "o"]).Errors, Is.Empty);
        Assert.That(root.Parse(["eval", "images", "pred", "gt", "--background", "black"]).Errors, Is.Empty);
        // A negative number is a value, not an option.
        Assert.That(root.Parse(["mesh", "v.npy", "--level", "0.5", "--out", "m.glb", "--bounds", "-1", "-1", "-1", "1", "1", "1"]).Errors, Is.Empty);
    }

    [Test]
    public void EveryPositionalArgumentOfEveryCommandRejectsAnUnknownOption()
    {
        var checkedCommands = 0;
        foreach (var (command, path) in Walk(LrmProgram.CreateRoot(), []))
        {
            if (command.Arguments.Count == 0)
            {
                continue;
            }
            var result = LrmProgram.CreateRoot().Parse([.. path, "--zz-not-an-option"]);
            Assert.That(result.Errors.Select(error => error.Message), Has.Some.StartWith("unknown option '--zz-not-an-option' for 'lrm "),
                $"lrm {string.Join(' ', path)}");
            checkedCommands++;
        }
        Assert.That(checkedCommands, Is.GreaterThanOrEqualTo(6), "reconstruct, mesh, showcase, eval images/mesh, dataset check, …");
    }

    [TestCase("", "", 0)]
    [TestCase("--resolution", "--resolutoin", 2)]
    [TestCase("--out", "--our", 1)]
    [TestCase("kitten", "sitting", 3)]
    public void EditDistanceIsLevenshtein(string a, string b, int expected)
    {
        Assert.That(CliConventions.Distance(a, b), Is.EqualTo(expected));
        Assert.That(CliConventions.Distance(b, a), Is.EqualTo(expected));
    }

    private static IEnumerable<(Command Command, string[] Path)> Walk(Command command, string[] path)
    {
        yield return (command, path);
        foreach (var subcommand in command.Subcommands)
        {
            foreach (var item in Walk(subcommand, [.. path, subcommand.Name]))
            {
                yield return item;
            }
        }
    }
}
